package dev.peft4j;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.peft4j.bottleneck.BottleneckConfig;
import dev.peft4j.hybrid.HybridConfig;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.ia3.Ia3Config;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.quant.Quantization;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The fluent entry point: one factory per PEFT method, taking the method's required values.
 *
 * <pre>{@code
 * PeftModel m = Peft.lora(16).alpha(32).dropout(0.05).target("q_proj", "v_proj").apply(sameDiff);
 * System.out.println(m.trainableParameters());   // trainable params: … || all params: … || trainable%: …
 * SameDiff merged = m.mergeAndUnload();           // zero-overhead inference
 * }</pre>
 *
 * <p>It lives in peft-methods, beside the methods it names, so that peft-core depends on no method.
 */
public final class Peft {

  private Peft() {}

  /** LoRA of rank {@code r}; add {@code .rsLora()} for rank-stabilised scaling α/√r. */
  public static LoraConfig.Builder lora(int r) {
    return LoraConfig.builder(r);
  }

  /**
   * QLoRA: LoRA of rank {@code r} on a base whose linear weights (all but the output heads) are stored in NF4 with
   * double quantisation, blocks of 64, as the QLoRA paper; {@code Peft.lora(r).quantizeBase(q)} for another storage.
   * The adapter saves as an ordinary LoRA adapter; the base stays quantised after unload.
   * <pre>{@code
   * PeftModel m = Peft.qlora(16).alpha(32).target("all-linear").apply(sameDiff);
   * }</pre>
   *
   * @see dev.peft4j.quant.QuantizedBase
   */
  public static LoraConfig.Builder qlora(int r) {
    return LoraConfig.builder(r).quantizeBase(Quantization.nf4());
  }

  /** IA³: learned vectors rescaling the targets' outputs, or their inputs for {@code feedforward(...)} targets. */
  public static Ia3Config.Builder ia3() {
    return Ia3Config.builder();
  }

  /**
   * Bottleneck adapters of width {@code size} after each layer's attention and feed-forward output projections
   * (Houlsby); {@code .afterFfnOnly()} for one per layer (Pfeiffer).
   */
  public static BottleneckConfig.Builder bottleneck(int size) {
    return BottleneckConfig.builder(size);
  }

  /**
   * Several methods as one adapter, applied in the order given and trained, saved, disabled and unloaded together;
   * mergeable when every part is.
   * <pre>{@code
   * Peft.hybrid(Peft.lora(8).target("q_proj", "v_proj").build(), Peft.bottleneck(16).afterFfnOnly().build())
   *     .apply(sameDiff);
   * }</pre>
   */
  public static HybridConfig.Builder hybrid(AdapterConfig... parts) {
    return HybridConfig.builder(parts);
  }

  /** The {@code peft_type} values {@link #load} reads. */
  public static final Set<String> LOADABLE = Set.of("LORA", "IA3", "BOTTLENECK", "HYBRID");

  /**
   * Loads an adapter saved by Hugging Face PEFT or by {@link PeftModel#save} onto {@code base} as the adapter
   * {@value PeftModel#DEFAULT_ADAPTER}. Both files are read and validated completely before the model is touched.
   *
   * @throws IOException naming the file and the problem (missing, corrupt or truncated files, an unknown peft_type)
   * @throws IllegalArgumentException if the adapter does not fit {@code base} (naming the module and both shapes);
   *     {@code base} is unchanged then
   */
  public static PeftModel load(SameDiff base, Path dir) throws IOException {
    return loadAdapter(PeftModel.wrap(base), PeftModel.DEFAULT_ADAPTER, dir);
  }

  /** Loads the adapter in {@code dir} into {@code model} under {@code name}; see {@link #load}. */
  public static PeftModel loadAdapter(PeftModel model, String name, Path dir) throws IOException {
    AdapterFiles.Read read = AdapterFiles.read(dir);
    Set<String> ignored = new TreeSet<>();
    AdapterConfig config;
    try {
      config = configFromHf(read.config(), ignored);
    } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
      throw new IOException(dir.resolve(AdapterFiles.CONFIG) + ": " + e.getMessage(), e);
    }
    if (!ignored.isEmpty()) {
      LOG.warn("{}: ignoring fields peft4j does not know: {}", dir.resolve(AdapterFiles.CONFIG), ignored);
    }
    return model.addAdapter(name, config, read.tensors());
  }

  /**
   * The config an {@code adapter_config.json} describes, by its {@code peft_type}; unknown fields go to
   * {@code ignored}. Also reads the parts of a hybrid.
   *
   * @throws IllegalArgumentException naming the field, or the peft_type if it is not one of {@link #LOADABLE}
   */
  static AdapterConfig configFromHf(JsonObject json, Set<String> ignored) {
    JsonElement type = json.get("peft_type");
    String peftType = type == null || type.isJsonNull() ? null : type.getAsString();
    return switch (peftType == null ? "" : peftType) {
      case "LORA" -> LoraConfig.fromHf(json, ignored);
      case "IA3" -> Ia3Config.fromHf(json, ignored);
      case "BOTTLENECK" -> BottleneckConfig.fromHf(json, ignored);
      case "HYBRID" -> HybridConfig.fromHf(json, ignored, Peft::configFromHf);
      default -> throw new IllegalArgumentException(String.format("peft_type '%s' is not supported; supported: %s",
          peftType, LOADABLE));
    };
  }

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Peft.class);
}
