package dev.peft4j.bottleneck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.bottleneck.BottleneckConfig.Placement;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import dev.peft4j.train.Batch;
import java.util.function.Consumer;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Every bad input is a clear exception naming the problem, and the graph is exactly as it was afterwards. */
class BottleneckBadInputTest {

  private static void rejects(Function<DataType, SameDiff> model, Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(model, IllegalArgumentException.class, action, fragments);
  }

  @Test
  void sizeMustBePositive() {
    rejects(ToyModels::attention, sd -> Peft.bottleneck(0).apply(sd), "size must be > 0, got 0");
    rejects(ToyModels::attention, sd -> Peft.bottleneck(-4).apply(sd), "-4");
  }

  @Test
  void dropoutMustBeInZeroOne() {
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).dropout(1.0).apply(sd), "dropout must be in [0, 1)",
        "1.0");
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).dropout(-0.5).apply(sd), "-0.5");
  }

  @Test
  void namedModulesThatDoNotExistListTheModulesThatDo() {
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).attentionOutput("out_proj").apply(sd),
        "attention-output modules [out_proj] not found", "layers.0.self_attn.o_proj", "layers.1.mlp.down_proj");
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).ffnOutput("down_proj", "fc2").apply(sd),
        "modules [fc2] not found", "lm_head");
  }

  @Test
  void aGraphWithNoneOfTheDefaultNamesSaysSoAndListsItsModules() {
    rejects(ToyModels::mlp, sd -> Peft.bottleneck(2).apply(sd),
        "none of the default attention-output modules [attention.output.dense, self_attn.o_proj]",
        "attentionOutput(...)", "afterFfnOnly()", "layers.0.fc", "head");
    rejects(ToyModels::mlp, sd -> Peft.bottleneck(2).afterFfnOnly().apply(sd),
        "none of the default feed-forward-output", "[output.dense, mlp.down_proj]", "ffnOutput(...)", "layers.1.fc");
  }

  @Test
  void aFeedForwardNameThatOnlyMatchesAttentionOutputsIsRefused() {
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).ffnOutput("o_proj").apply(sd),
        "attention outputs excepted", "[o_proj] not found");
  }

  @Test
  void aModuleThatIsNotALinearLayerIsRefused() {
    rejects(ToyModels::attention, sd -> Peft.bottleneck(2).afterFfnOnly().ffnOutput("norm").apply(sd),
        "not linear layers", "layers.0.norm", "Linear layers that exist");
  }

  @Test
  void modulesToSaveMustNotBeAdapted() {
    rejects(ToyModels::mlp, sd -> Peft.bottleneck(2).afterFfnOnly().ffnOutput("head").modulesToSave("head")
        .apply(sd), "module 'head' is both adapted by a bottleneck adapter and in modules_to_save");
  }

  @Test
  void optionsCanBeSetOnce() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> Peft.bottleneck(2).afterFfnOnly().placement(Placement.HOULSBY));
    assertTrue(e.getMessage().contains("placement was already set to PFEIFFER"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> Peft.bottleneck(2).dropout(0.1).dropout(0.2));
    assertThrows(IllegalStateException.class, () -> Peft.bottleneck(2).ffnOutput("a").ffnOutput("b"));
    assertThrows(IllegalArgumentException.class, () -> Peft.bottleneck(2).ffnOutput());
    assertThrows(IllegalArgumentException.class, () -> Peft.bottleneck(2).attentionOutput(" "));
  }

  @Test
  void aBottleneckCannotBeMerged() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.bottleneck(2).apply(sd);
    Batch batch = Graphs.batches(sd, 1, 1, 3).get(0);
    INDArray adapted = Graphs.logits(sd, batch);
    IllegalStateException e = assertThrows(IllegalStateException.class, model::mergeAndUnload);
    assertTrue(e.getMessage().contains("adapter 'default' cannot be merged: BottleneckConfig{size=2"), e.getMessage());
    assertTrue(model.adapter("default").isEnabled(), "nothing was changed");
    assertEquals(adapted, Graphs.logits(sd, batch));
  }
}
