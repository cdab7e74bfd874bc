package dev.peft4j.methods;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonObject;
import dev.peft4j.AdapterConfig;
import dev.peft4j.Targets;
import dev.peft4j.adalora.AdaLoraConfig;
import dev.peft4j.bitfit.BitFitConfig;
import dev.peft4j.bottleneck.BottleneckConfig;
import dev.peft4j.fourierft.FourierFtConfig;
import dev.peft4j.hybrid.HybridConfig;
import dev.peft4j.ia3.Ia3Config;
import dev.peft4j.io.JsonFields;
import dev.peft4j.lntuning.LnTuningConfig;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.prefix.PrefixTuningConfig;
import dev.peft4j.prompt.PromptTuningConfig;
import dev.peft4j.ptuning.PTuningConfig;
import dev.peft4j.quantum.QuantumPeftConfig;
import dev.peft4j.selective.FullFineTuningConfig;
import dev.peft4j.selective.LinearProbeConfig;
import dev.peft4j.vera.VeraConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The registry of peft4j's methods: one line per method, read by {@link Peft#load} (which {@code peft_type} is which
 * config), {@link ParameterBudget#count} (the closed-form count of a config), the contract suite and the comparison
 * (a test fails when a registered method is missing from either, or has no factory in {@link Peft}).
 *
 * <p>The budget lambdas translate a config into {@link ParameterBudget}'s numbers; a config the closed form cannot
 * express (regex targets, a custom bottleneck placement, …) is refused naming what it cannot.
 */
public final class PeftMethods {

  private static final Map<String, PeftMethod<?>> BY_TYPE = new LinkedHashMap<>();

  static {
    register(new PeftMethod<>("LORA", LoraConfig.class, LoraConfig::fromHf,
        (b, c) -> c.useDora() ? b.dora(c.r(), names(c.targets())) : b.lora(c.r(), names(c.targets()))));
    register(new PeftMethod<>("ADALORA", AdaLoraConfig.class, AdaLoraConfig::fromHf,
        (b, c) -> b.adaLora(c.initR(), names(c.targets()))));
    register(new PeftMethod<>("IA3", Ia3Config.class, Ia3Config::fromHf,
        (b, c) -> b.ia3(List.of(names(c.targets())), c.feedforward())));
    register(new PeftMethod<>("VERA", VeraConfig.class, VeraConfig::fromHf,
        (b, c) -> b.vera(c.r(), names(c.targets()))));
    register(new PeftMethod<>("FOURIERFT", FourierFtConfig.class, FourierFtConfig::fromHf,
        (b, c) -> b.fourierFt(c.nFrequency(), names(c.targets()))));
    register(new PeftMethod<>(QuantumPeftConfig.PEFT_TYPE, QuantumPeftConfig.class, QuantumPeftConfig::fromHf,
        (b, c) -> b.perTarget(c::parameterCount, names(c.targets()))));
    register(new PeftMethod<>("BOTTLENECK", BottleneckConfig.class, BottleneckConfig::fromHf,
        (b, c) -> b.bottleneck(c.size(), ParameterBudget.Placement.valueOf(c.placement().name()))));
    register(new PeftMethod<>("PROMPT_TUNING", PromptTuningConfig.class, PromptTuningConfig::fromHf,
        (b, c) -> b.prompt(c.numVirtualTokens())));
    register(new PeftMethod<>("PREFIX_TUNING", PrefixTuningConfig.class, PrefixTuningConfig::fromHf, (b, c) -> {
      checkArgument(!c.projection(), "the budget counts prefix tuning without projection (the folded table) only");
      return b.prefix(c.numVirtualTokens());
    }));
    register(new PeftMethod<>("P_TUNING", PTuningConfig.class, PTuningConfig::fromHf, (b, c) -> {
      checkArgument(c.encoder() == PTuningConfig.Encoder.MLP, "the budget counts P-tuning's MLP encoder only, not %s",
          c.encoder());
      return b.pTuning(c.numVirtualTokens(), c.encoderHiddenSize() == null ? b.shape().hidden()
          : c.encoderHiddenSize());
    }));
    register(new PeftMethod<>(BitFitConfig.PEFT_TYPE, BitFitConfig.class, BitFitConfig::fromHf,
        (b, c) -> { // the biases of modules to save train with their module, not twice
          long biases = c.targetsAllLinearLayers() ? b.bitFit() : b.bitFit(names(c.targets()));
          return biases - (c.modulesToSave().isEmpty() ? 0 : b.bitFit(c.modulesToSave().toArray(String[]::new)));
        }));
    register(new PeftMethod<>(LnTuningConfig.PEFT_TYPE, LnTuningConfig.class, LnTuningConfig::fromHf, (b, c) -> {
      checkArgument(c.targets() == null || c.targets().regex().filter(".*"::equals).isPresent(),
          "the budget counts LN tuning of every norm layer only, not %s", c.targets());
      return b.lnTuning();
    }));
    register(new PeftMethod<>(LinearProbeConfig.PEFT_TYPE, LinearProbeConfig.class, LinearProbeConfig::fromHf,
        (b, c) -> c.head().isEmpty() ? b.headOnly() : b.modulesToSave(c.head())));
    register(new PeftMethod<>(FullFineTuningConfig.PEFT_TYPE, FullFineTuningConfig.class,
        FullFineTuningConfig::fromHf, (b, c) -> {
          checkArgument(c.excluded().isEmpty(), "the budget counts full fine-tuning without exclusions only, not %s",
              c.excluded());
          return b.fullFineTuning();
        }));
    register(new PeftMethod<>("HYBRID", HybridConfig.class,
        (json, ignored) -> HybridConfig.fromHf(json, ignored, PeftMethods::read),
        (b, c) -> c.parts().stream().mapToLong(b::count).sum()));
  }

  private PeftMethods() {}

  private static void register(PeftMethod<?> method) {
    checkArgument(!BY_TYPE.containsKey(method.peftType()), "peft_type %s is registered twice", method.peftType());
    checkArgument(BY_TYPE.values().stream().noneMatch(m -> m.configType() == method.configType()),
        "config class %s is registered twice", method.configType().getSimpleName());
    BY_TYPE.put(method.peftType(), method);
  }

  /** Every registered method, in registration order. */
  public static List<PeftMethod<?>> all() {
    return List.copyOf(BY_TYPE.values());
  }

  /** The {@code peft_type} values {@link Peft#load} reads. */
  public static Set<String> peftTypes() {
    return BY_TYPE.keySet();
  }

  /**
   * The method of {@code config}.
   *
   * @throws IllegalArgumentException if its class is not registered
   */
  public static PeftMethod<?> of(AdapterConfig config) {
    return BY_TYPE.values().stream().filter(m -> m.configType().isInstance(config)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException(String.format("%s is not a registered method; methods: %s",
            config.getClass().getSimpleName(), BY_TYPE.keySet())));
  }

  /**
   * The config an {@code adapter_config.json} describes, by its {@code peft_type}; unknown fields go to
   * {@code ignored}.
   *
   * @throws IllegalArgumentException naming the field, or the peft_type if it is not registered
   */
  public static AdapterConfig read(JsonObject json, Set<String> ignored) {
    String peftType = JsonFields.of(json).string("peft_type", null);
    PeftMethod<?> method = BY_TYPE.get(peftType == null ? "" : peftType);
    checkArgument(method != null, "peft_type '%s' is not supported; supported: %s", peftType, BY_TYPE.keySet());
    return method.reader().fromHf(json, ignored);
  }

  /** Targets as the budget's module names: a list of names or {@code "all-linear"}, nothing narrower. */
  private static String[] names(Targets t) {
    checkArgument(t.regex().isEmpty() && t.excluded().isEmpty() && t.layers().isEmpty(),
        "the budget takes target module names or all-linear, without regex, exclude or layers; got %s", t);
    return t.entries().toArray(String[]::new);
  }
}
