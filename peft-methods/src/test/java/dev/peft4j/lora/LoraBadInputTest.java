package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.MergeableAdapter;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;

/** Every bad input is a clear exception naming the problem, and the graph is exactly as it was afterwards. */
class LoraBadInputTest {

  /** Runs {@code action} on a fresh attention graph, expects {@code type} with {@code fragments}, checks nothing moved. */
  private static <T extends RuntimeException> void rejects(Class<T> type, Consumer<SameDiff> action,
      String... fragments) {
    Refusals.assertRefusedUnchanged(ToyModels::attention, type, action, fragments);
  }

  @Test
  void rankMustBePositive() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(0).target("q_proj").apply(sd), "r must be > 0", "0");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(-3).target("q_proj").apply(sd), "-3");
  }

  @Test
  void alphaMustBePositive() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).alpha(0).target("q_proj").apply(sd),
        "alpha must be > 0", "0.0");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).alpha(Double.NaN).target("q_proj").apply(sd), "NaN");
  }

  @Test
  void dropoutMustBeInZeroOne() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).dropout(1.0).target("q_proj").apply(sd),
        "dropout must be in [0, 1)", "1.0");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).dropout(-0.1).target("q_proj").apply(sd), "-0.1");
  }

  @Test
  void targetsMustBeGivenAndNonEmpty() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).apply(sd), "no target modules");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target().apply(sd), "must not be empty");
  }

  @Test
  void unmatchedTargetListsTheModulesThatExist() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target("q_proj", "query").apply(sd),
        "[query] not found", "layers.0.self_attn.q_proj", "lm_head", "layers.1.norm");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).targetRegex("attention\\..*").apply(sd),
        "matches no module", "layers.0.self_attn.v_proj");
  }

  @Test
  void targetThatIsNotALinearLayerIsRejected() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target("q_proj", "norm").apply(sd),
        "not linear layers", "layers.0.norm", "layers.1.norm", "Linear layers that exist");
  }

  /**
   * As in Hugging Face PEFT, whose SEQ_CLS adapters list both {@code classifier} and {@code score} for a model that has
   * one of them: an entry that matches no module is skipped (with a warning), the others are saved.
   */
  @Test
  void modulesToSaveThatMatchNoModuleAreSkippedAsHuggingFaceSkipsThem() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").modulesToSave("classifier", "lm_head").apply(sd);
    assertEquals(java.util.List.of("peft/default/modules_to_save/lm_head.bias",
        "peft/default/modules_to_save/lm_head.weight"),
        model.trainableParameters().names().stream().filter(n -> n.contains("modules_to_save")).toList());
  }

  @Test
  void modulesToSaveMustNotBeTargets() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target("q_proj", "lm_head").modulesToSave("lm_head")
        .apply(sd), "both a LoRA target and in modules_to_save");
  }

  @Test
  void filtersThatLeaveNothingAreRejected() {
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target("q_proj").layers(7).apply(sd),
        "no module left");
    rejects(IllegalArgumentException.class, sd -> Peft.lora(4).target("q_proj").exclude("q_proj").apply(sd),
        "no module left");
  }

  @Test
  void optionsCanBeSetOnce() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> Peft.lora(4).alpha(8).alpha(16));
    assertTrue(e.getMessage().contains("alpha was already set to 8.0"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> Peft.lora(4).target("a").target("b"));
    assertThrows(IllegalStateException.class, () -> Peft.lora(4).target("a").targetRegex("b"));
    assertThrows(IllegalStateException.class, () -> Peft.lora(4).rsLora().rsLora());
    assertThrows(IllegalStateException.class, () -> Peft.lora(4).dropout(0.1).dropout(0.1));
  }

  @Test
  void sameAdapterNameTwiceIsRejectedAndTheFirstSurvives() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").apply(sd);
    Map<String, VariableType> types = Graphs.types(sd);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> model.addAdapter("default", Peft.lora(2).target("k_proj").build()));
    assertTrue(e.getMessage().contains("'default' exists already"), e.getMessage());
    assertEquals(types, Graphs.types(sd));
    assertEquals(java.util.List.of(), GraphRewriter.of(sd).checkLinks());
  }

  /** Issue 18: "." and ".." saved over the default adapter and into the parent; a NUL failed after writing. */
  @Test
  void adapterNamesThatAreNotPlainDirectoryNamesAreRejectedBeforeTheGraphIsTouched() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").apply(sd);
    Map<String, VariableType> types = Graphs.types(sd);
    for (String bad : new String[] {".", "..", "a\u0000b", "a/b", "a\\b", " ", "x".repeat(129)}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> model.addAdapter(bad, Peft.lora(2).target("k_proj").build()));
      assertTrue(e.getMessage().startsWith("adapter name \""), e.getMessage());
      assertEquals(types, Graphs.types(sd), "nothing rewired for " + e.getMessage());
    }
    assertEquals(java.util.Set.of("default"), model.adapterNames());
  }

  @Test
  void mergingTwiceUnmergingUnmergedAndMergingDisabledAreRejected() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").apply(sd);
    MergeableAdapter lora = (MergeableAdapter) model.adapter("default");
    assertTrue(assertThrows(IllegalStateException.class, lora::unmerge).getMessage().contains("is not merged"));
    lora.merge();
    assertTrue(assertThrows(IllegalStateException.class, lora::merge).getMessage().contains("merged already"));
    assertTrue(assertThrows(IllegalStateException.class, lora::disable).getMessage().contains("unmerge it"));
    lora.unmerge();
    lora.disable();
    assertTrue(assertThrows(IllegalStateException.class, lora::merge).getMessage().contains("is disabled"));
  }

  @Test
  void anUnloadedAdapterCannotBeUsed() {
    SameDiff sd = ToyModels.attention(DataType.FLOAT);
    PeftModel model = Peft.lora(4).target("q_proj").apply(sd);
    MergeableAdapter lora = (MergeableAdapter) model.adapter("default");
    model.unload();
    assertTrue(assertThrows(IllegalStateException.class, lora::merge).getMessage().contains("was unloaded"));
    assertThrows(IllegalStateException.class, lora::enable);
  }
}
