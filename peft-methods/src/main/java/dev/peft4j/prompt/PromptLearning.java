package dev.peft4j.prompt;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonObject;
import dev.peft4j.AdapterConfig;
import dev.peft4j.ConfigBuilder;
import dev.peft4j.HfConfig;
import dev.peft4j.io.JsonFields;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What prompt tuning, prefix tuning and P-tuning share, written and read once: the fields of Hugging Face PEFT's
 * {@code PromptLearningConfig} ({@code num_virtual_tokens}, {@code token_dim}, {@code num_transformer_submodules},
 * {@code num_attention_heads}, {@code num_layers}) and the builder part holding them. A config read from a file is in
 * inference mode: it describes a saved adapter whose weights are loaded next, so its prompt is not initialised, as
 * Hugging Face PEFT skips the init in inference mode.
 */
public final class PromptLearning {

  private static final Set<String> FIELDS = Set.of("num_virtual_tokens", "token_dim", "num_transformer_submodules",
      "num_attention_heads", "num_layers");

  private PromptLearning() {}

  /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
  public static void checkNumVirtualTokens(int numVirtualTokens) {
    checkArgument(numVirtualTokens >= 1, "num_virtual_tokens must be ≥ 1, got %s", numVirtualTokens);
  }

  /**
   * {@link HfConfig#of} with the shared fields: {@code num_virtual_tokens}, {@code token_dim} (null unless read from a
   * file), {@code num_transformer_submodules} 1 (peft4j has no encoder-decoder models), {@code num_attention_heads}
   * and {@code num_layers} null (they describe the model, and PEFT fills them from it), {@code modules_to_save}.
   */
  public static Map<String, Object> toHf(String peftType, int numVirtualTokens, Integer tokenDim,
      List<String> modulesToSave) {
    Map<String, Object> hf = HfConfig.of(peftType);
    hf.put("num_virtual_tokens", numVirtualTokens);
    hf.put("token_dim", tokenDim);
    hf.put("num_transformer_submodules", 1);
    hf.put("num_attention_heads", null);
    hf.put("num_layers", null);
    HfConfig.putModulesToSave(hf, modulesToSave);
    return hf;
  }

  /**
   * The fields of a prompt-learning method's {@code adapter_config.json}; every field that is neither shared nor one
   * of {@code methodFields} is added to {@code ignored}.
   */
  public static JsonFields read(JsonObject json, Set<String> ignored, Set<String> methodFields) {
    Set<String> known = new HashSet<>(FIELDS);
    known.addAll(methodFields);
    return HfConfig.read(json, ignored, known);
  }

  /** @throws IllegalArgumentException if {@code num_virtual_tokens} is missing or not an integer */
  public static int numVirtualTokens(JsonFields f) {
    checkArgument(f.has("num_virtual_tokens"), "num_virtual_tokens is missing");
    return f.integer("num_virtual_tokens", 0);
  }

  /**
   * The builder part the prompt-learning methods share: the number of virtual tokens (given to the factory), the seed
   * and modules to save, and what a file adds ({@link #readHf}).
   *
   * @param <C> the config built
   * @param <B> the builder itself
   */
  public abstract static class Builder<C extends AdapterConfig, B extends Builder<C, B>> extends ConfigBuilder<C, B> {
    private final int numVirtualTokens;
    private Integer tokenDim;
    private boolean inferenceMode;

    /** @throws IllegalArgumentException if {@code numVirtualTokens < 1} */
    protected Builder(int numVirtualTokens) {
      checkNumVirtualTokens(numVirtualTokens);
      this.numVirtualTokens = numVirtualTokens;
    }

    protected int numVirtualTokens() {
      return numVirtualTokens;
    }

    /** {@code token_dim} from a file, checked against the model when applied; null otherwise. */
    protected Integer tokenDim() {
      return tokenDim;
    }

    /** Whether the config is read from a file. */
    protected boolean inferenceMode() {
      return inferenceMode;
    }

    /**
     * Also reads {@code token_dim} and {@code num_transformer_submodules} (only 1), and puts the config in inference
     * mode.
     *
     * @throws IllegalArgumentException naming the field, for a value of the wrong JSON type or more than one
     *     transformer submodule
     */
    @Override
    public B readHf(JsonFields f) {
      tokenDim = f.optionalInteger("token_dim");
      // HF records the model's heads and layers; peft4j takes them from the graph, but still checks their type
      f.optionalInteger("num_attention_heads");
      f.optionalInteger("num_layers");
      Integer submodules = f.optionalInteger("num_transformer_submodules");
      checkArgument(submodules == null || submodules == 1, "num_transformer_submodules: %s is not supported (peft4j "
          + "has no encoder-decoder models); only 1", submodules);
      inferenceMode = true;
      return super.readHf(f);
    }
  }
}
