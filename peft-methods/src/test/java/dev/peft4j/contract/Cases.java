package dev.peft4j.contract;

import static dev.peft4j.testing.ToyModels.CLASSES;
import static dev.peft4j.testing.ToyModels.D;
import static dev.peft4j.testing.ToyModels.FFN;
import static dev.peft4j.testing.ToyModels.MLP_HIDDEN;
import static dev.peft4j.testing.ToyModels.MLP_IN;
import static dev.peft4j.testing.ToyModels.TOKEN_HEAD_DIM;
import static dev.peft4j.testing.ToyModels.TOKEN_HIDDEN;
import static dev.peft4j.testing.ToyModels.TOKEN_KV_HEADS;
import static dev.peft4j.testing.ToyModels.TOKEN_LAYERS;

import dev.peft4j.AdapterConfig;
import dev.peft4j.bottleneck.BottleneckConfig.NonLinearity;
import dev.peft4j.methods.Peft;
import dev.peft4j.prompt.PromptTuningConfig.PromptInit;
import dev.peft4j.ptuning.PTuningConfig.Encoder;
import dev.peft4j.quant.Quantization;
import dev.peft4j.quant.QuantizedBase;
import dev.peft4j.testing.ToyModels;
import java.util.EnumSet;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The table of the contract suite: model × method config × what the method promises. A new method joins the suite by
 * adding its rows here; the properties in {@link AdapterContractTest} contain no per-method cases.
 */
public final class Cases {

  /** What a method promises; a property that needs a capability is skipped for rows without it. */
  public enum Capability {
    /** Output equals the base output right after apply. */
    IDENTITY_AT_INIT,
    /** merge / unmerge / mergeAndUnload exist and preserve the output. */
    MERGEABLE,
    /**
     * The method stops the gradient through part of its computation on purpose (DoRA's weight norm), so its gradients
     * are not the loss's finite differences; its own test checks them with the stopped part held constant.
     */
    STOPPED_GRADIENT,
    /**
     * Trained through an encoder that saving folds away (prefix tuning's projection, P-tuning's prompt encoder): a
     * loaded adapter gives the same outputs but trains the folded table, a different count.
     */
    REPARAMETERISED
  }

  /**
   * One row.
   *
   * @param name           shown in the test report
   * @param model          a fresh base graph of the given data type each call
   * @param config         the method's config
   * @param expectedParams the closed-form trainable count, written out from the model's dimensions
   * @param capabilities   what the method promises
   */
  public record Case(String name, Function<DataType, SameDiff> model, Supplier<AdapterConfig> config,
      long expectedParams, Set<Capability> capabilities) {

    /** A fresh float base graph. */
    public SameDiff base() {
      return model.apply(DataType.FLOAT);
    }

    @Override
    public String toString() {
      return name;
    }
  }

  private static final Set<Capability> LORA = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> ADALORA = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> IA3 = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> VERA = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> FOURIERFT = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> QUANTUM_PEFT = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> FOURIERFT_RANDOM_INIT = EnumSet.of(Capability.MERGEABLE);
  private static final Set<Capability> DORA = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE,
      Capability.STOPPED_GRADIENT);
  private static final Set<Capability> BOTTLENECK = EnumSet.of(Capability.IDENTITY_AT_INIT);
  private static final Set<Capability> HYBRID = EnumSet.of(Capability.IDENTITY_AT_INIT);
  private static final Set<Capability> SELECTIVE = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  /** Prompt learning changes the output from the start (the model reads n more tokens) and merges into nothing. */
  private static final Set<Capability> PROMPT = EnumSet.noneOf(Capability.class);
  private static final Set<Capability> PROMPT_ENCODER = EnumSet.of(Capability.REPARAMETERISED);
  private static final Set<Capability> MERGEABLE_HYBRID = EnumSet.of(Capability.IDENTITY_AT_INIT,
      Capability.MERGEABLE);
  private static final Set<Capability> MERGEABLE_HYBRID_WITH_DORA = EnumSet.of(Capability.IDENTITY_AT_INIT,
      Capability.MERGEABLE, Capability.STOPPED_GRADIENT);

  /** Every scalar of a linear layer in → out with bias. */
  private static long linear(long in, long out) {
    return in * out + out;
  }

  /** Trainable scalars of one bottleneck adapter of width b on hidden width h. */
  private static long adapter(long h, long b) {
    return 2 * h * b + b + h;
  }

  /** Quantum-PEFT's angles of one circuit: (L + 1)·Σ (d_i − 1) over the width's prime factors d_i. */
  private static long circuit(int layers, int... primeFactors) {
    return (layers + 1L) * java.util.Arrays.stream(primeFactors).map(d -> d - 1).sum();
  }

  /** One linear layer with bias. */
  private static long mlp(long in, long out) {
    return in * out + out;
  }

  /** One bidirectional LSTM layer of width e per direction over inputs of width in (one bias per direction). */
  private static long lstm(long in, long e) {
    return 2 * (in * 4 * e + e * 4 * e + 4 * e);
  }

  /** Embedding [n, kv] + Linear(kv, e) + Linear(e, layers·2·kv) on the token toy. */
  private static long prefixProjection(long n, long e) {
    long kv = (long) TOKEN_KV_HEADS * TOKEN_HEAD_DIM;
    long table = TOKEN_LAYERS * 2 * kv;
    return n * kv + kv * e + e + e * table + table;
  }

  private Cases() {}

  public static Stream<Case> cases() {
    Function<DataType, SameDiff> mlp = ToyModels::mlp;
    Function<DataType, SameDiff> attention = ToyModels::attention;
    Function<DataType, SameDiff> tokens = ToyModels::tokens;
    int blocks = ToyModels.BLOCKS;
    return Stream.of(
        new Case("lora r4 mlp all-linear", mlp,
            () -> Peft.lora(4).alpha(8).target("all-linear").build(),
            4L * (MLP_IN + MLP_HIDDEN) + 4L * (MLP_HIDDEN + MLP_HIDDEN), LORA),
        new Case("lora r2 mlp fc+head dropout", mlp,
            () -> Peft.lora(2).alpha(4).dropout(0.1).target("fc", "head").build(),
            2L * (MLP_IN + MLP_HIDDEN) + 2L * (MLP_HIDDEN + MLP_HIDDEN) + 2L * (MLP_HIDDEN + CLASSES), LORA),
        new Case("lora r2 mlp fc + modules_to_save head", mlp,
            () -> Peft.lora(2).target("fc").modulesToSave("head").build(),
            2L * (MLP_IN + MLP_HIDDEN) + 2L * (MLP_HIDDEN + MLP_HIDDEN) + (long) MLP_HIDDEN * CLASSES + CLASSES, LORA),
        new Case("lora r4 attention q,v", attention,
            () -> Peft.lora(4).alpha(16).target("q_proj", "v_proj").build(),
            blocks * 2L * 4 * (D + D), LORA),
        new Case("rslora r8 attention all-linear", attention,
            () -> Peft.lora(8).alpha(4).rsLora().dropout(0.05).target("all-linear").build(),
            blocks * (4L * 8 * (D + D) + 8L * (D + FFN) + 8L * (FFN + D)), LORA),
        new Case("lora r2 attention regex layer 1 mlp", attention,
            () -> Peft.lora(2).targetRegex("layers\\.1\\.mlp\\..*").build(),
            2L * (D + FFN) + 2L * (FFN + D), LORA),
        new Case("lora r3 attention layers(0) exclude k", attention,
            () -> Peft.lora(3).target("self_attn.q_proj", "k_proj", "o_proj").exclude("k_proj").layers(0).build(),
            2L * 3 * (D + D), LORA),
        // tinit beyond the suite's longest run (40 steps): no triplet is masked here (AdaLoraTest covers masking)
        new Case("adalora r4→2 mlp all-linear", mlp,
            () -> Peft.adaLora(4, 2).totalStep(200).tinit(100).target("all-linear").build(),
            4L * (MLP_IN + MLP_HIDDEN + 1) + 4L * (MLP_HIDDEN + MLP_HIDDEN + 1), ADALORA),
        new Case("adalora r3→2 attention q,v dropout alpha 16", attention,
            () -> Peft.adaLora(3, 2).alpha(16).dropout(0.1).totalStep(100).tinit(60).tfinal(10)
                .target("q_proj", "v_proj").build(),
            blocks * 2L * 3 * (D + D + 1), ADALORA),
        new Case("dora r4 mlp all-linear", mlp,
            () -> Peft.dora(4).alpha(8).target("all-linear").build(),
            4L * (MLP_IN + MLP_HIDDEN) + MLP_HIDDEN + 4L * (MLP_HIDDEN + MLP_HIDDEN) + MLP_HIDDEN, DORA),
        new Case("dora r2 mlp fc+head dropout", mlp,
            () -> Peft.dora(2).alpha(4).dropout(0.1).target("fc", "head").build(),
            2L * (MLP_IN + MLP_HIDDEN) + MLP_HIDDEN + 2L * (MLP_HIDDEN + MLP_HIDDEN) + MLP_HIDDEN
                + 2L * (MLP_HIDDEN + CLASSES) + CLASSES, DORA),
        new Case("dora r4 attention q,v", attention,
            () -> Peft.dora(4).alpha(16).target("q_proj", "v_proj").build(),
            blocks * 2L * (4 * (D + D) + D), DORA),
        new Case("dora r3 rslora attention all-linear dropout + modules_to_save lm_head", attention,
            () -> Peft.dora(3).alpha(6).rsLora().dropout(0.05).target("all-linear").modulesToSave("lm_head").build(),
            blocks * (4L * (3 * (D + D) + D) + 3L * (D + FFN) + FFN + 3L * (FFN + D) + D)
                + (long) D * CLASSES + CLASSES, DORA),
        new Case("ia3 attention k,v + feed-forward down", attention,
            () -> Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").build(),
            blocks * (2L * D + FFN), IA3),
        new Case("ia3 mlp fc (feed-forward) + modules_to_save head", mlp,
            () -> Peft.ia3().target("fc").feedforward("fc").modulesToSave("head").build(),
            MLP_IN + MLP_HIDDEN + (long) MLP_HIDDEN * CLASSES + CLASSES, IA3),
        new Case("vera r4 attention q,v dropout", attention,
            () -> Peft.vera(4).target("q_proj", "v_proj").projectionSeed(3).dropout(0.1).build(),
            blocks * 2L * (4 + D), VERA),
        new Case("vera r3 mlp fc + head (sliced projections)", mlp,
            () -> Peft.vera(3).target("fc", "head").dInitial(0.5).build(),
            (3L + MLP_HIDDEN) + (3L + MLP_HIDDEN) + (3L + CLASSES), VERA),
        new Case("vera r2 attention mlp layer 1 + modules_to_save lm_head", attention,
            () -> Peft.vera(2).target("up_proj", "down_proj").layers(1).modulesToSave("lm_head").build(),
            (2L + FFN) + (2L + D) + (long) D * CLASSES + CLASSES, VERA),
        new Case("fourierft n6 attention q,v zero init", attention,
            () -> Peft.fourierFt(6).scaling(20).target("q_proj", "v_proj").zeroInit().build(),
            blocks * 2L * 6, FOURIERFT),
        new Case("fourierft n5 mlp fc + head, HF's random init", mlp,
            () -> Peft.fourierFt(5).target("fc", "head").randomLocSeed(3).seed(4).build(),
            3L * 5, FOURIERFT_RANDOM_INIT),
        new Case("fourierft n10 attention mlp layer 0 + modules_to_save lm_head", attention,
            () -> Peft.fourierFt(10).scaling(50).target("up_proj", "down_proj").layers(0).zeroInit()
                .modulesToSave("lm_head").build(),
            2L * 10 + (long) D * CLASSES + CLASSES, FOURIERFT),
        // widths 6 = 2·3, 8 = 2³, 12 = 2²·3, 3: qutrits beside qubits
        new Case("quantum-peft k4 scale 4 attention q,v", attention,
            () -> Peft.quantumPeft(4).scale(4).target("q_proj", "v_proj").seed(1).build(),
            blocks * 2L * (circuit(1, 2, 2, 2) + circuit(1, 2, 2, 2) + 4), QUANTUM_PEFT),
        new Case("quantum-peft k3 L2 scale 2 mlp fc + head", mlp,
            () -> Peft.quantumPeft(3).circuitLayers(2).scale(2).target("fc", "head").seed(2).build(),
            circuit(2, 2, 3) + circuit(2, 2, 2, 2) + 3 + 2 * circuit(2, 2, 2, 2) + 3 + circuit(2, 2, 2, 2)
                + circuit(2, 3) + 3, QUANTUM_PEFT),
        new Case("quantum-peft k8 full rank attention mlp layer 1 + modules_to_save lm_head", attention,
            () -> Peft.quantumPeft(8).target("up_proj", "down_proj").layers(1).modulesToSave("lm_head").build(),
            2 * (circuit(1, 2, 2, 2) + circuit(1, 2, 2, 3) + 8) + (long) D * CLASSES + CLASSES, QUANTUM_PEFT),
        new Case("bottleneck b4 houlsby attention", attention,
            () -> Peft.bottleneck(4).build(),
            blocks * 2 * adapter(D, 4), BOTTLENECK),
        new Case("bottleneck b3 pfeiffer gelu dropout attention", attention,
            () -> Peft.bottleneck(3).afterFfnOnly().nonLinearity(NonLinearity.GELU).dropout(0.1).seed(2).build(),
            blocks * adapter(D, 3), BOTTLENECK),
        new Case("bottleneck b2 mlp named fc silu + modules_to_save head", mlp,
            () -> Peft.bottleneck(2).attentionOutput("layers.0.fc").ffnOutput("layers.1.fc")
                .nonLinearity(NonLinearity.SILU).modulesToSave("head").build(),
            2 * adapter(MLP_HIDDEN, 2) + (long) MLP_HIDDEN * CLASSES + CLASSES, BOTTLENECK),
        new Case("hybrid lora q,v + bottleneck pfeiffer tanh + modules_to_save lm_head", attention,
            () -> Peft.hybrid(Peft.lora(4).alpha(16).target("q_proj", "v_proj").build(),
                Peft.bottleneck(4).afterFfnOnly().nonLinearity(NonLinearity.TANH).build())
                .modulesToSave("lm_head").build(),
            blocks * 2L * 4 * (D + D) + blocks * adapter(D, 4) + (long) D * CLASSES + CLASSES, HYBRID),
        new Case("hybrid lora q,v + ia3 k + feed-forward down (mergeable)", attention,
            () -> Peft.hybrid(Peft.lora(4).alpha(16).dropout(0.1).target("q_proj", "v_proj").build(),
                Peft.ia3().target("k_proj", "down_proj").feedforward("down_proj").build()).build(),
            blocks * 2L * 4 * (D + D) + blocks * ((long) D + FFN), MERGEABLE_HYBRID),
        new Case("bitfit mlp fc + modules_to_save head", mlp,
            () -> Peft.bitFit().target("fc").modulesToSave("head").build(),
            2L * MLP_HIDDEN + linear(MLP_HIDDEN, CLASSES), SELECTIVE),
        new Case("bitfit attention every bias (q,k,v have none)", attention,
            () -> Peft.bitFit().build(),
            blocks * (2L * D + FFN) + CLASSES, SELECTIVE),
        new Case("ln tuning attention every norm", attention,
            () -> Peft.lnTuning().build(),
            (long) blocks * D, SELECTIVE),
        new Case("ln tuning attention layers.1.norm + modules_to_save lm_head", attention,
            () -> Peft.lnTuning().target("layers.1.norm").modulesToSave("lm_head").build(),
            D + linear(D, CLASSES), SELECTIVE),
        new Case("linear probe mlp", mlp,
            () -> Peft.linearProbe().build(),
            linear(MLP_HIDDEN, CLASSES), SELECTIVE),
        new Case("linear probe attention lm_head", attention,
            () -> Peft.linearProbe().head("lm_head").build(),
            linear(D, CLASSES), SELECTIVE),
        new Case("full fine-tuning mlp", mlp,
            () -> Peft.fullFineTuning().build(),
            linear(MLP_IN, MLP_HIDDEN) + linear(MLP_HIDDEN, MLP_HIDDEN) + linear(MLP_HIDDEN, CLASSES), SELECTIVE),
        new Case("full fine-tuning attention", attention,
            () -> Peft.fullFineTuning().build(),
            blocks * (3L * D * D + linear(D, D) + D + linear(D, FFN) + linear(FFN, D)) + linear(D, CLASSES),
            SELECTIVE),
        new Case("hybrid dora q,v + ia3 k + feed-forward down (mergeable)", attention,
            () -> Peft.hybrid(Peft.dora(4).alpha(16).dropout(0.1).target("q_proj", "v_proj").build(),
                Peft.ia3().target("k_proj", "down_proj").feedforward("down_proj").build()).build(),
            blocks * 2L * (4 * (D + D) + D) + blocks * ((long) D + FFN), MERGEABLE_HYBRID_WITH_DORA),
        new Case("prompt tuning n4 random tokens", tokens,
            () -> Peft.promptTuning(4).seed(1).build(),
            4L * TOKEN_HIDDEN, PROMPT),
        new Case("prompt tuning n3 sample-vocab + modules_to_save classifier", tokens,
            () -> Peft.promptTuning(3).init(PromptInit.SAMPLE_VOCAB).seed(2).modulesToSave("classifier").build(),
            3L * TOKEN_HIDDEN + (long) TOKEN_HIDDEN * CLASSES + CLASSES, PROMPT),
        new Case("prompt tuning n5 text init", tokens,
            () -> Peft.promptTuning(5).initText("a b", 3, 7).tokenizer("toy").build(),
            5L * TOKEN_HIDDEN, PROMPT),
        new Case("prefix tuning n3 table (grouped-query attention)", tokens,
            () -> Peft.prefixTuning(3).seed(1).build(),
            3L * TOKEN_LAYERS * 2 * TOKEN_KV_HEADS * TOKEN_HEAD_DIM, PROMPT),
        new Case("prefix tuning n2 projection e5 + modules_to_save classifier", tokens,
            () -> Peft.prefixTuning(2).projection(5).seed(3).modulesToSave("classifier").build(),
            prefixProjection(2, 5) + (long) TOKEN_HIDDEN * CLASSES + CLASSES, PROMPT_ENCODER),
        new Case("p-tuning n3 mlp e6", tokens,
            () -> Peft.pTuning(3).encoderHiddenSize(6).seed(4).build(),
            3L * TOKEN_HIDDEN + mlp(TOKEN_HIDDEN, 6) + mlp(6, 6) + mlp(6, TOKEN_HIDDEN), PROMPT_ENCODER),
        new Case("p-tuning n3 bidirectional lstm e3 x2 layers", tokens,
            () -> Peft.pTuning(3).encoder(Encoder.LSTM).encoderHiddenSize(3).seed(5).build(),
            3L * TOKEN_HIDDEN + lstm(TOKEN_HIDDEN, 3) + lstm(6, 3) + mlp(6, 6) + mlp(6, TOKEN_HIDDEN), PROMPT_ENCODER),
        // QLoRA: the base is stored quantised before the adapter comes (as a model loaded in 4 bits), so "the base"
        // whose output the adapter must reproduce at init, and that unload restores, is the dequantised one
        new Case("qlora nf4 r4 mlp all-linear", quantized(mlp, Quantization.nf4()),
            () -> Peft.qlora(4).alpha(8).target("all-linear").build(),
            4L * (MLP_IN + MLP_HIDDEN) + 4L * (MLP_HIDDEN + MLP_HIDDEN), LORA),
        new Case("qlora int8 r2 attention q,v dropout", quantized(attention, Quantization.int8()),
            () -> Peft.lora(2).alpha(4).dropout(0.1).target("q_proj", "v_proj").quantizeBase(Quantization.int8())
                .build(),
            blocks * 2L * 2 * (D + D), LORA),
        new Case("qlora nf4 block 128 no double-quant r2 attention all-linear", quantized(attention,
            Quantization.nf4().doubleQuant(false).blockSize(128)),
            () -> Peft.lora(2).target("all-linear").quantizeBase(Quantization.nf4().doubleQuant(false).blockSize(128))
                .build(),
            blocks * (4L * 2 * (D + D) + 2L * (D + FFN) + 2L * (FFN + D)), LORA),
        new Case("ia3 on an nf4 base attention k,v + feed-forward down", quantized(attention, Quantization.nf4()),
            () -> Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").build(),
            blocks * (2L * D + FFN), IA3));
  }

  /** {@code model} with every linear layer but the head stored as {@code q}. */
  private static Function<DataType, SameDiff> quantized(Function<DataType, SameDiff> model, Quantization q) {
    return type -> {
      SameDiff sd = model.apply(type);
      QuantizedBase.quantize(sd, q);
      return sd;
    };
  }

  public static Stream<Arguments> all() {
    return cases().map(Arguments::of);
  }
}
