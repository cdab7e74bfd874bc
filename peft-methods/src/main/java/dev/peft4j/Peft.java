package dev.peft4j;

import dev.peft4j.adalora.AdaLoraConfig;
import dev.peft4j.bitfit.BitFitConfig;
import dev.peft4j.bottleneck.BottleneckConfig;
import dev.peft4j.fourierft.FourierFtConfig;
import dev.peft4j.hybrid.HybridConfig;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.ia3.Ia3Config;
import dev.peft4j.lntuning.LnTuningConfig;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.selective.FullFineTuningConfig;
import dev.peft4j.selective.LinearProbeConfig;
import dev.peft4j.vera.VeraConfig;
import dev.peft4j.prefix.PrefixTuningConfig;
import dev.peft4j.prompt.PromptTuningConfig;
import dev.peft4j.ptuning.PTuningConfig;
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
   * AdaLoRA: SVD-shaped updates of initial rank {@code initR} per module, pruned during training to an average of
   * {@code targetR}; needs {@code .totalStep(n)} (the schedule's length) and targets.
   * <pre>{@code
   * PeftModel m = Peft.adaLora(12, 4).totalStep(1000).tinit(100).tfinal(200).target("q_proj", "v_proj").apply(sd);
   * new Trainer.Builder(m).steps(1000).build().fit(batches);   // allocates ranks after each step
   * }</pre>
   */
  public static AdaLoraConfig.Builder adaLora(int initR, int targetR) {
    return AdaLoraConfig.builder(initR, targetR);
  }

  /**
   * DoRA of rank {@code r}: a trained magnitude per output feature times the normalised direction of the weight plus
   * a rank-r update; short for {@code lora(r).useDora()}, so the options are LoRA's.
   */
  public static LoraConfig.Builder dora(int r) {
    return LoraConfig.builder(r).useDora();
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
   * VeRA of rank {@code r}: frozen random projections shared by all targets, and per target two trained vectors
   * (Σ (r + out) scalars).
   */
  public static VeraConfig.Builder vera(int r) {
    return VeraConfig.builder(r);
  }

  /**
   * FourierFT with {@code nFrequency} learned spectral coefficients per target: ΔW is the real part of their inverse
   * 2-D DFT (n · targets scalars). Starts from a random spectrum as Hugging Face PEFT; {@code .zeroInit()} starts
   * equal to the base.
   */
  public static FourierFtConfig.Builder fourierFt(int nFrequency) {
    return FourierFtConfig.builder(nFrequency);
  }

  /**
   * Bottleneck adapters of width {@code size} after each layer's attention and feed-forward output projections
   * (Houlsby); {@code .afterFfnOnly()} for one per layer (Pfeiffer).
   */
  public static BottleneckConfig.Builder bottleneck(int size) {
    return BottleneckConfig.builder(size);
  }

  /**
   * BitFit: only the biases of linear layers train (every linear layer with a bias, or those given to
   * {@code target(...)}). Refused, saying so, on models whose linear layers have no biases (Llama, Qwen).
   */
  public static BitFitConfig.Builder bitFit() {
    return BitFitConfig.builder();
  }

  /** LayerNorm tuning (HF's LN_TUNING): only the norm layers' γ (and β) train; every norm layer by default. */
  public static LnTuningConfig.Builder lnTuning() {
    return LnTuningConfig.builder();
  }

  /** Linear probing: only the task head trains (the output heads, or {@code head(...)}). */
  public static LinearProbeConfig.Builder linearProbe() {
    return LinearProbeConfig.builder();
  }

  /**
   * Full fine-tuning: every floating-point weight trains except the embedding tables, which ND4J 1.0.0-M2.1 cannot
   * differentiate through its {@code gather}.
   */
  public static FullFineTuningConfig.Builder fullFineTuning() {
    return FullFineTuningConfig.builder();
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

  /**
   * Prompt tuning: {@code numVirtualTokens} trained embeddings prepended to the input embeddings of a transformer graph
   * ({@code Bert.encoder}, {@code Llama.causalLm}).
   * <pre>{@code
   * Peft.promptTuning(20).init(PromptInit.SAMPLE_VOCAB).apply(llama);
   * }</pre>
   */
  public static PromptTuningConfig.Builder promptTuning(int numVirtualTokens) {
    return PromptTuningConfig.builder(numVirtualTokens);
  }

  /**
   * Prefix tuning: {@code numVirtualTokens} trained key/value vectors in front of every attention layer's keys and
   * values; {@code .projection(e)} trains them through HF's MLP reparameterisation (folded away when saved).
   * <pre>{@code
   * Peft.prefixTuning(10).projection(256).apply(llama);
   * }</pre>
   */
  public static PrefixTuningConfig.Builder prefixTuning(int numVirtualTokens) {
    return PrefixTuningConfig.builder(numVirtualTokens);
  }

  /**
   * P-tuning: {@code numVirtualTokens} virtual tokens produced by a trained MLP prompt encoder, prepended to the input
   * embeddings; saved as the encoder's output.
   * <pre>{@code
   * Peft.pTuning(20).encoderHiddenSize(128).apply(llama);
   * }</pre>
   */
  public static PTuningConfig.Builder pTuning(int numVirtualTokens) {
    return PTuningConfig.builder(numVirtualTokens);
  }

  /** The {@code peft_type} values {@link #load} reads: those of {@link PeftMethods}. */
  public static final Set<String> LOADABLE = PeftMethods.peftTypes();

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
      config = PeftMethods.read(read.config(), ignored);
    } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
      throw new IOException(dir.resolve(AdapterFiles.CONFIG) + ": " + e.getMessage(), e);
    }
    if (!ignored.isEmpty()) {
      LOG.warn("{}: ignoring fields peft4j does not know: {}", dir.resolve(AdapterFiles.CONFIG), ignored);
    }
    return model.addAdapter(name, config, read.tensors());
  }

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Peft.class);
}
