package dev.peft4j.prompt;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.gson.JsonObject;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ModulesToSave;
import dev.peft4j.Targets;
import dev.peft4j.io.JsonFields;
import dev.peft4j.model.Hooks;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The immutable configuration of prompt tuning; built by {@code Peft.promptTuning(n)}.
 *
 * <pre>{@code
 * PeftModel m = Peft.promptTuning(8).init(PromptInit.SAMPLE_VOCAB).seed(3).apply(llama);
 * PeftModel t = Peft.promptTuning(8).initText("Classify the sentiment:", tokenIds).tokenizer("bert-base-uncased")
 *     .apply(bert);
 * }</pre>
 *
 * @param init             how the prompt table starts (default {@link PromptInit#RANDOM})
 * @param initText         the text of a {@link PromptInit#TEXT} init (HF's {@code prompt_tuning_init_text}), or null
 * @param initTextTokenIds the token ids of the init text; empty for other inits and for a config read from a file
 * @param tokenizer        HF's {@code tokenizer_name_or_path}, required with a TEXT init, or null
 * @param tokenDim         HF's {@code token_dim} read from a file, checked against the model; null otherwise
 * @param inferenceMode    whether this config describes a saved adapter (read from a file): its prompt starts at
 *                         zero because its weights are loaded next, as HF skips the init in inference mode
 * @param seed             seed of the RANDOM and SAMPLE_VOCAB inits
 * @see PromptTuning
 */
public record PromptTuningConfig(int numVirtualTokens, PromptInit init, String initText, List<Long> initTextTokenIds,
    String tokenizer, Integer tokenDim, boolean inferenceMode, List<String> modulesToSave, long seed)
    implements AdapterConfig {

  /**
   * How the prompt table starts (Hugging Face's {@code prompt_tuning_init}): {@code RANDOM} Normal(0, 1),
   * {@code nn.Embedding}'s default; {@code SAMPLE_VOCAB} rows of the word-embedding table at n token ids drawn
   * uniformly from the vocabulary (seeded); {@code TEXT} the word embeddings of a text's tokens, repeated to n tokens.
   */
  public enum PromptInit { RANDOM, SAMPLE_VOCAB, TEXT }

  /**
   * @throws IllegalArgumentException for fewer than one virtual token, a TEXT init without text, tokenizer or (unless
   *     read from a file) token ids, or a tokenizer with another init
   */
  public PromptTuningConfig {
    PromptLearning.checkNumVirtualTokens(numVirtualTokens);
    Objects.requireNonNull(init, "init");
    initTextTokenIds = List.copyOf(initTextTokenIds);
    if (init == PromptInit.TEXT) {
      checkArgument(initText != null, "prompt_tuning_init TEXT needs prompt_tuning_init_text");
      checkArgument(tokenizer != null, "prompt_tuning_init TEXT needs a tokenizer (tokenizer_name_or_path), as "
          + "Hugging Face PEFT requires");
      checkArgument(inferenceMode || !initTextTokenIds.isEmpty(), "prompt_tuning_init TEXT needs the text's token ids");
    } else {
      checkArgument(tokenizer == null, "a tokenizer is only used with a TEXT init, not %s", init);
    }
    modulesToSave = List.copyOf(modulesToSave);
  }

  /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
  public static Builder builder(int numVirtualTokens) {
    return new Builder(numVirtualTokens);
  }

  @Override
  public String peftType() {
    return "PROMPT_TUNING";
  }

  /** @throws UnsupportedOperationException always: prompt tuning adapts no module */
  @Override
  public Targets targets() {
    throw new UnsupportedOperationException("prompt tuning adapts no module: its " + numVirtualTokens
        + " virtual tokens enter at the input embeddings");
  }

  /** {@link #initTextTokenIds()} as an array. */
  public long[] initTokenIds() {
    return initTextTokenIds.stream().mapToLong(Long::longValue).toArray();
  }

  /** {@code n · H}, plus the modules to save. */
  @Override
  public long parameterCount(SameDiff sameDiff) {
    Hooks.Dims dims = VirtualTokens.check(sameDiff, numVirtualTokens, "prompt tuning");
    return (long) numVirtualTokens * dims.hidden() + ModulesToSave.parameterCount(sameDiff, modulesToSave);
  }

  /** Checks the config against the graph's dimensions; called before anything is built. */
  Hooks.Dims check(SameDiff sd) {
    return VirtualTokens.check(sd, numVirtualTokens, tokenDim, "prompt tuning");
  }

  @Override
  public Map<String, Object> toHfConfig() {
    Map<String, Object> hf = PromptLearning.toHf(peftType(), numVirtualTokens, tokenDim, modulesToSave);
    hf.put("prompt_tuning_init", init.name());
    hf.put("prompt_tuning_init_text", initText);
    hf.put("tokenizer_name_or_path", tokenizer);
    hf.put("tokenizer_kwargs", null);
    return hf;
  }

  private static final Set<String> KNOWN_FIELDS = Set.of("prompt_tuning_init", "prompt_tuning_init_text",
      "tokenizer_name_or_path", "tokenizer_kwargs");

  /**
   * A config from Hugging Face PEFT's {@code adapter_config.json} for prompt tuning, in inference mode; unknown fields
   * are returned in {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, for a value of the wrong JSON type or one peft4j lacks
   */
  public static PromptTuningConfig fromHf(JsonObject json, Set<String> ignored) {
    JsonFields f = PromptLearning.read(json, ignored, KNOWN_FIELDS);
    Builder b = builder(PromptLearning.numVirtualTokens(f)).readHf(f);
    b.init = f.constant("prompt_tuning_init", PromptInit.class, null);
    b.initText = f.string("prompt_tuning_init_text", null);
    f.object("tokenizer_kwargs"); // unused (peft4j's tokenizers take no options) but type-checked all the same
    b.tokenizer = f.string("tokenizer_name_or_path", null);
    return b.build();
  }

  @Override
  public Adapter newAdapter(String adapterName) {
    return new PromptTuning(adapterName, this);
  }

  /** Builds a {@link PromptTuningConfig}; each option can be set once. */
  public static final class Builder extends PromptLearning.Builder<PromptTuningConfig, Builder> {
    private PromptInit init;
    private String initText;
    private List<Long> initTextTokenIds = List.of();
    private String tokenizer;

    private Builder(int numVirtualTokens) {
      super(numVirtualTokens);
    }

    /**
     * How the prompt starts: {@link PromptInit#RANDOM} (default) or {@link PromptInit#SAMPLE_VOCAB}; for
     * {@link PromptInit#TEXT} use {@link #initText}.
     *
     * @throws IllegalStateException if the init was already set
     */
    public Builder init(PromptInit init) {
      checkState(this.init == null, "init was already set to %s", this.init);
      this.init = Objects.requireNonNull(init, "init");
      return this;
    }

    /**
     * Starts the prompt from the word embeddings of {@code text}, whose tokens (as the model's tokenizer gives them)
     * are {@code tokenIds}; they are repeated until there are n. Hugging Face PEFT cuts a longer text to n tokens
     * silently; peft4j refuses it.
     *
     * @throws IllegalArgumentException if the text is blank, there are no ids, or more ids than virtual tokens
     * @throws IllegalStateException if the init was already set
     */
    public Builder initText(String text, long... tokenIds) {
      checkState(this.init == null, "init was already set to %s", this.init);
      checkArgument(text != null && !text.isBlank(), "the init text must not be blank");
      checkArgument(tokenIds != null && tokenIds.length > 0, "the init text '%s' needs its token ids", text);
      checkArgument(tokenIds.length <= numVirtualTokens(), "the init text '%s' has %s tokens, more than the %s "
          + "virtual tokens; shorten it or use more virtual tokens", text, tokenIds.length, numVirtualTokens());
      this.init = PromptInit.TEXT;
      this.initText = text;
      this.initTextTokenIds = Arrays.stream(tokenIds).boxed().toList();
      return this;
    }

    /** The tokenizer's name or path (HF's {@code tokenizer_name_or_path}), required with a TEXT init, as in HF. */
    public Builder tokenizer(String nameOrPath) {
      checkState(tokenizer == null, "tokenizer was already set to %s", tokenizer);
      checkArgument(nameOrPath != null && !nameOrPath.isBlank(), "tokenizer must not be blank");
      this.tokenizer = nameOrPath;
      return this;
    }

    /** @throws IllegalArgumentException for a TEXT init without text or tokenizer (unless read from a file) */
    @Override
    public PromptTuningConfig build() {
      return new PromptTuningConfig(numVirtualTokens(), init == null ? PromptInit.RANDOM : init, initText,
          initTextTokenIds, tokenizer, tokenDim(), inferenceMode(), modulesToSave(), seed());
    }
  }
}
