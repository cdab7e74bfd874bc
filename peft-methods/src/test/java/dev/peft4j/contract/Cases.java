package dev.peft4j.contract;

import static dev.peft4j.testing.ToyModels.CLASSES;
import static dev.peft4j.testing.ToyModels.D;
import static dev.peft4j.testing.ToyModels.FFN;
import static dev.peft4j.testing.ToyModels.MLP_HIDDEN;
import static dev.peft4j.testing.ToyModels.MLP_IN;

import dev.peft4j.AdapterConfig;
import dev.peft4j.Peft;
import dev.peft4j.bottleneck.BottleneckConfig.NonLinearity;
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
    MERGEABLE
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
  private static final Set<Capability> IA3 = EnumSet.of(Capability.IDENTITY_AT_INIT, Capability.MERGEABLE);
  private static final Set<Capability> BOTTLENECK = EnumSet.of(Capability.IDENTITY_AT_INIT);
  private static final Set<Capability> HYBRID = EnumSet.of(Capability.IDENTITY_AT_INIT);
  private static final Set<Capability> MERGEABLE_HYBRID = EnumSet.of(Capability.IDENTITY_AT_INIT,
      Capability.MERGEABLE);

  /** Trainable scalars of one bottleneck adapter of width b on hidden width h. */
  private static long adapter(long h, long b) {
    return 2 * h * b + b + h;
  }

  private Cases() {}

  public static Stream<Case> cases() {
    Function<DataType, SameDiff> mlp = ToyModels::mlp;
    Function<DataType, SameDiff> attention = ToyModels::attention;
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
        new Case("ia3 attention k,v + feed-forward down", attention,
            () -> Peft.ia3().target("k_proj", "v_proj", "down_proj").feedforward("down_proj").build(),
            blocks * (2L * D + FFN), IA3),
        new Case("ia3 mlp fc (feed-forward) + modules_to_save head", mlp,
            () -> Peft.ia3().target("fc").feedforward("fc").modulesToSave("head").build(),
            MLP_IN + MLP_HIDDEN + (long) MLP_HIDDEN * CLASSES + CLASSES, IA3),
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
