package dev.peft4j.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import java.util.HashSet;
import java.util.function.Consumer;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** Every bad input is a clear exception naming the problem, and the graph is exactly as it was afterwards. */
class DoraBadInputTest {

  private static void rejects(Function<DataType, SameDiff> model, Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(model, IllegalArgumentException.class, action, fragments);
  }

  @Test
  void rankAboveTheSmallerSideOfAWeightIsRefusedNamingTheModuleAndItsShape() {
    // head is [8, 3]: r = 4 cannot be reached by B·A; the fc layers before it would have been fine
    rejects(ToyModels::mlp, sd -> Peft.dora(4).target("fc", "head").apply(sd),
        "DoRA rank r=4 exceeds min(in, out) = 3 of module 'head'", "[8, 3]");
    rejects(ToyModels::attention, sd -> Peft.dora(9).target("q_proj").apply(sd), "r=9", "layers.0.self_attn.q_proj");
  }

  @Test
  void rankMustBePositive() {
    rejects(ToyModels::mlp, sd -> Peft.dora(0).target("head").apply(sd), "DoRA rank r must be > 0, got 0");
    rejects(ToyModels::mlp, sd -> Peft.dora(-2).target("head").apply(sd), "-2");
  }

  @Test
  void alphaAndDropoutAreChecked() {
    rejects(ToyModels::mlp, sd -> Peft.dora(2).alpha(0).target("head").apply(sd), "alpha must be > 0", "0.0");
    rejects(ToyModels::mlp, sd -> Peft.dora(2).dropout(1.0).target("head").apply(sd), "dropout must be in [0, 1)",
        "1.0");
    rejects(ToyModels::mlp, sd -> Peft.dora(2).apply(sd), "no target modules");
  }

  @Test
  void unknownTargetsListTheModulesThatExist() {
    rejects(ToyModels::mlp, sd -> Peft.dora(2).target("q_proj", "head").apply(sd),
        "target modules [q_proj] not found", "layers.0.fc", "layers.1.fc", "head");
    rejects(ToyModels::attention, sd -> Peft.dora(2).targetRegex("layers\\.7\\..*").apply(sd),
        "matches no module", "layers.1.mlp.down_proj");
  }

  @Test
  void aModuleThatIsNotALinearLayerIsRefused() {
    rejects(ToyModels::attention, sd -> Peft.dora(2).target("norm").apply(sd),
        "DoRA adapts linear layers", "layers.0.norm", "lm_head");
  }

  @Test
  void modulesToSaveMustNotBeTargets() {
    rejects(ToyModels::mlp, sd -> Peft.dora(2).target("head").modulesToSave("head").apply(sd),
        "module 'head' is both a DoRA target and in modules_to_save");
  }

  @Test
  void optionsCanBeSetOnce() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> Peft.dora(2).alpha(1).alpha(2));
    assertTrue(e.getMessage().contains("alpha was already set to 1.0"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> Peft.dora(2).dropout(0.1).dropout(0.2));
    assertThrows(IllegalStateException.class, () -> Peft.dora(2).target("a").targetRegex("b"));
    assertThrows(IllegalStateException.class, () -> Peft.dora(2).rsLora().rsLora());
  }

  @Test
  void configsFromHuggingFaceAreRoutedByUseDora() {
    JsonObject json = JsonParser.parseString("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, "
        + "\"target_modules\": [\"head\"], \"use_dora\": false}").getAsJsonObject();
    LoraConfig lora = LoraConfig.fromHf(json, new HashSet<>());
    assertEquals(Peft.lora(2).alpha(4).target("head").build(), lora);
    assertTrue(lora.newAdapter("x") instanceof Lora);
    json.addProperty("use_dora", true);
    LoraConfig dora = LoraConfig.fromHf(json, new HashSet<>());
    assertEquals(Peft.dora(2).alpha(4).target("head").build(), dora);
    assertEquals(Peft.lora(2).useDora().alpha(4).target("head").build(), dora);
    assertTrue(dora.newAdapter("x") instanceof Dora);
    assertEquals(true, dora.toHfConfig().get("use_dora"));
    assertEquals(false, Peft.lora(2).alpha(4).target("head").build().toHfConfig().get("use_dora"));
  }

  @Test
  void aMergedDoraRefusesToDisableAndAnUnappliedOneToMerge() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.dora(2).target("head").apply(sd);
    Dora dora = (Dora) model.adapter("default");
    dora.merge();
    IllegalStateException e = assertThrows(IllegalStateException.class, dora::disable);
    assertTrue(e.getMessage().contains("unmerge it before disabling"), e.getMessage());
    Dora fresh = (Dora) Peft.dora(2).target("head").build().newAdapter("x");
    e = assertThrows(IllegalStateException.class, fresh::merge);
    assertTrue(e.getMessage().contains("adapter 'x' has not been applied"), e.getMessage());
  }
}
