package dev.peft4j.adalora;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;

/** Every bad input is a clear exception naming the values, and the graph is exactly as it was afterwards. */
class AdaLoraBadInputTest {

  private static void rejects(Consumer<SameDiff> action, String... fragments) {
    Refusals.assertRefusedUnchanged(ToyModels::attention, IllegalArgumentException.class, action, fragments);
  }

  @Test
  void targetRankAboveInitialRank() {
    rejects(sd -> Peft.adaLora(2, 3).totalStep(10).target("q_proj").apply(sd),
        "target_r (3) must not exceed init_r (2)");
  }

  @Test
  void ranksMustBePositive() {
    rejects(sd -> Peft.adaLora(0, 0).totalStep(10).target("q_proj").apply(sd), "init_r must be > 0, got 0");
    rejects(sd -> Peft.adaLora(4, -1).totalStep(10).target("q_proj").apply(sd), "target_r must be > 0, got -1");
  }

  @Test
  void initialRankAboveTheSmallerSideOfAModule() {
    // down_proj is [12 → 8]: a rank of 9 cannot be an SVD of it
    rejects(sd -> Peft.adaLora(9, 2).totalStep(10).target("down_proj").apply(sd),
        "init_r 9 exceeds min(in, out) = 8 of module 'layers.0.mlp.down_proj' (in 12, out 8)");
  }

  @Test
  void scheduleWithoutABudgetingPhase() {
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).tinit(6).tfinal(4).target("q_proj").apply(sd),
        "tinit (6) + tfinal (4) must be < total_step (10)");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).tinit(12).target("q_proj").apply(sd),
        "tinit (12) + tfinal (0) must be < total_step (10)");
  }

  @Test
  void totalStepIsRequired() {
    rejects(sd -> Peft.adaLora(4, 2).target("q_proj").apply(sd), "total_step must be set and > 0, got none");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(0).target("q_proj").apply(sd), "total_step must be set and > 0, got 0");
  }

  @Test
  void deltaTMustBePositive() {
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).deltaT(0).target("q_proj").apply(sd),
        "deltaT must be > 0, got 0");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).deltaT(-3).target("q_proj").apply(sd), "got -3");
  }

  @Test
  void betasWeightAlphaAndDropout() {
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).betas(1.0, 0.5).target("q_proj").apply(sd),
        "beta1 and beta2 must be in (0, 1), got (1.0, 0.5)");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).orthRegWeight(-0.1).target("q_proj").apply(sd),
        "orth_reg_weight must be >= 0 and finite, got -0.1");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).alpha(0).target("q_proj").apply(sd), "alpha must be > 0");
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).dropout(1).target("q_proj").apply(sd), "[0, 1), got 1.0");
  }

  @Test
  void targetsThatMatchNothingListTheModules() {
    rejects(sd -> Peft.adaLora(4, 2).totalStep(10).target("query").apply(sd), "query", "layers.0.self_attn.q_proj");
  }

  @Test
  void rankPatternOfTheWrongLengthOrForAnotherModule() {
    rejects(sd -> Peft.adaLora(2, 1).totalStep(10).target("q_proj")
        .rankPattern(Map.of("layers.0.self_attn.q_proj.lora_E", List.of(true, false, true))).apply(sd),
        "rank_pattern['layers.0.self_attn.q_proj.lora_E'] has 3 entries; init_r is 2");
    rejects(sd -> Peft.adaLora(2, 1).totalStep(10).target("q_proj")
        .rankPattern(Map.of("layers.0.self_attn.k_proj.lora_E", List.of(true, false))).apply(sd),
        "rank_pattern key 'layers.0.self_attn.k_proj.lora_E' names no targeted module",
        "layers.1.self_attn.q_proj");
  }

  @Test
  void anHfConfigWithoutTotalStepOrWithDora() {
    JsonObject json = JsonParser.parseString("{\"peft_type\": \"ADALORA\", \"init_r\": 4, \"target_r\": 2, "
        + "\"target_modules\": [\"q_proj\"]}").getAsJsonObject();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AdaLoraConfig.fromHf(json, new HashSet<>()));
    assertTrue(e.getMessage().contains("total_step is missing"), e.getMessage());
    json.addProperty("total_step", 10);
    json.addProperty("use_dora", true);
    e = assertThrows(IllegalArgumentException.class, () -> AdaLoraConfig.fromHf(json, new HashSet<>()));
    assertTrue(e.getMessage().contains("use_dora"), e.getMessage());
  }

  @Test
  void optionsAreSetOnce() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> Peft.adaLora(4, 2).totalStep(10).totalStep(20));
    assertTrue(e.getMessage().contains("total_step was already set to 10"), e.getMessage());
  }
}
