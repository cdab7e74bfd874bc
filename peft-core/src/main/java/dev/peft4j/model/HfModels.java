package dev.peft4j.model;

import dev.peft4j.BackendCheck;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Loads a Hugging Face checkpoint directory ({@code config.json} plus safetensors) as a peft4j graph, offline.
 *
 * <pre>{@code
 * HfModels.Loaded m = HfModels.load(Path.of("Qwen3-0.6B"));
 * PeftModel peft = Peft.lora(16).target("q_proj", "v_proj").apply(m.sameDiff());
 * }</pre>
 */
public final class HfModels {

  private HfModels() {}

  /**
   * A loaded model.
   *
   * @param sameDiff      the graph: {@link Bert#encoder} for {@code bert}, {@link Llama#causalLm} for llama, mistral,
   *                      qwen2, qwen3, gemma, {@link Roberta#encoder} for roberta and xlm-roberta (with the classification
   *                      head when {@code architectures} names a {@code …ForSequenceClassification}),
   *                      {@link DistilBert#encoder} for distilbert, {@link Gpt2#causalLm} for gpt2
   * @param config        {@link BertConfig}, {@link LlamaConfig}, {@link RobertaConfig}, {@link DistilBertConfig} or
   *                      {@link Gpt2Config}
   * @param unusedTensors checkpoint tensors the architecture did not use (as transformers warns about them)
   */
  public record Loaded(SameDiff sameDiff, Record config, Set<String> unusedTensors) {}

  /**
   * @throws IOException naming the file and the problem (missing files, unsupported model_type, missing config
   *     fields, corrupt safetensors); no graph is returned then
   * @throws IllegalArgumentException naming the tensor, if a tensor the architecture needs is missing or misshapen
   * @throws IllegalStateException naming the ND4J backend artifacts to add, if none is on the classpath
   *     ({@link BackendCheck})
   */
  public static Loaded load(Path dir) throws IOException {
    BackendCheck.requireBackend();
    Path configJson = dir.resolve("config.json");
    if (!Files.isRegularFile(configJson)) {
      throw new IOException(dir + ": no config.json");
    }
    String type = JsonConfig.read(configJson).modelType();
    Record config = switch (type) {
      case "bert" -> BertConfig.read(configJson);
      case "llama", "mistral", "qwen2", "qwen3", "gemma" -> LlamaConfig.read(configJson);
      case "roberta", "xlm-roberta" -> RobertaConfig.read(configJson);
      case "distilbert" -> DistilBertConfig.read(configJson);
      case "gpt2" -> Gpt2Config.read(configJson);
      default -> throw new IOException(String.format("%s: model_type '%s' is not supported; supported: bert, llama, "
          + "mistral, qwen2, qwen3, gemma, roberta, xlm-roberta, distilbert, gpt2", configJson, type));
    };
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      SameDiff sd = config instanceof BertConfig b ? Bert.encoder(b, weights)
          : config instanceof RobertaConfig r ? Roberta.encoder(r, weights)
          : config instanceof DistilBertConfig d ? DistilBert.encoder(d, weights)
          : config instanceof Gpt2Config g ? Gpt2.causalLm(g, weights)
          : Llama.causalLm((LlamaConfig) config, weights);
      return new Loaded(sd, config, weights.unused());
    }
  }
}
