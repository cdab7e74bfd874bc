package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.TrainableParameterSet;
import dev.peft4j.methods.ParameterBudget.Placement;
import dev.peft4j.methods.ParameterBudget.Shape;
import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.PretrainedModels;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;

/** ParameterBudget from MiniLM's config alone equals the trainable counts of the real all-MiniLM-L6-v2 graph. */
class MiniLmBudgetTest {

  private static void sameAsBuilt(SameDiff sd, AdapterConfig config, long budget) {
    PeftModel model = config.apply(sd);
    assertEquals(budget, model.trainableParameters().count(), config.toString());
    model.unload();
  }

  @Test
  void everyMethodMatchesTheBuiltModel() {
    PretrainedModels.Encoder m = PretrainedModels.miniLm(32);
    SameDiff sd = Heads.sequenceClassification(m.sameDiff(), 384, 2, Heads.Pooling.MEAN, 3);
    ParameterBudget b = ParameterBudget.of(Shape.of(m.config()).withClassifier(2));
    assertEquals(TrainableParameterSet.parameterCount(sd), b.totalParameters(), "22.7M + the classifier");
    assertEquals(22_713_216L - (384 * 384 + 384) + 384 * 2 + 2, b.totalParameters(),
        "all-MiniLM-L6-v2's published size, without BERT's pooler (the encoder graph has none), with the head");
    sameAsBuilt(sd, Peft.lora(16).target("query", "value").build(), b.lora(16, "query", "value"));
    sameAsBuilt(sd, Peft.lora(8).target("all-linear").build(), b.lora(8, "all-linear"));
    sameAsBuilt(sd, Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense").build(),
        b.ia3(List.of("key", "value", "output.dense"), List.of("output.dense")));
    sameAsBuilt(sd, Peft.bottleneck(16).build(), b.bottleneck(16, Placement.HOULSBY));
    sameAsBuilt(sd, Peft.bottleneck(16).afterFfnOnly().build(), b.bottleneck(16, Placement.PFEIFFER));
    sameAsBuilt(sd, Peft.bitFit().build(), b.bitFit());
    sameAsBuilt(sd, Peft.lnTuning().build(), b.lnTuning());
    sameAsBuilt(sd, Peft.linearProbe().build(), b.headOnly());
    sameAsBuilt(sd, Peft.fullFineTuning().build(), b.fullFineTuning());
    sameAsBuilt(sd, Peft.dora(8).target("query", "value").build(), b.dora(8, "query", "value"));
    sameAsBuilt(sd, Peft.adaLora(12, 8).totalStep(100).target("query", "value").build(),
        b.adaLora(12, "query", "value"));
    sameAsBuilt(sd, Peft.vera(64).target("query", "value").build(), b.vera(64, "query", "value"));
    sameAsBuilt(sd, Peft.fourierFt(100).target("query", "value").build(), b.fourierFt(100, "query", "value"));
    sameAsBuilt(sd, Peft.quantumPeft(16).circuitLayers(2).target("query", "value", "intermediate.dense").build(),
        b.count(Peft.quantumPeft(16).circuitLayers(2).target("query", "value", "intermediate.dense").build())); // 384 = 2^7·3, 1536 = 2^9·3
    sameAsBuilt(sd, Peft.promptTuning(10).build(), b.prompt(10));
    sameAsBuilt(sd, Peft.prefixTuning(10).build(), b.prefix(10));
    sameAsBuilt(sd, Peft.pTuning(10).encoderHiddenSize(32).build(), b.pTuning(10, 32));
    sameAsBuilt(sd, Peft.qlora(8).target("query", "value").build(), b.lora(8, "query", "value"));
  }
}
