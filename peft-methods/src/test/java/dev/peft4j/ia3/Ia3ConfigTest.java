package dev.peft4j.ia3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Refusals;
import dev.peft4j.testing.ToyModels;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** IA³'s config as Hugging Face's IA3Config: the fields it saves and reads, and the layers it cannot carry. */
class Ia3ConfigTest {

  @Test
  void savesHuggingFacesFieldsAndReadsThemBack() {
    Ia3Config cfg = Peft.ia3().targetRegex(".*(k|down)_proj").exclude("layers.1.mlp.down_proj")
        .feedforward("down_proj").modulesToSave("lm_head").build();
    assertEquals(Set.of("peft_type", "task_type", "inference_mode", "target_modules", "exclude_modules",
        "feedforward_modules", "modules_to_save", "fan_in_fan_out", "init_ia3_weights"), cfg.toHfConfig().keySet());
    JsonObject json = new Gson().toJsonTree(cfg.toHfConfig()).getAsJsonObject();
    Set<String> ignored = new HashSet<>();
    assertEquals(cfg, Ia3Config.fromHf(json, ignored));
    assertEquals(Set.of(), ignored);
  }

  /** HF's IA3Config has no layers_to_transform, so a saved file could not carry them: refused, not lost on save. */
  @Test
  void layersAreRefusedAsHuggingFacesIa3HasNone() {
    Refusals.assertRefusedUnchanged(ToyModels::attention, IllegalArgumentException.class,
        sd -> Peft.ia3().target("k_proj").layers(1).apply(sd), "IA³ cannot be narrowed to layers [1]",
        "layers_to_transform");
    JsonObject json = JsonParser.parseString("{\"peft_type\": \"IA3\", \"target_modules\": [\"k_proj\"], "
        + "\"layers_to_transform\": [0]}").getAsJsonObject();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Ia3Config.fromHf(json, new HashSet<>()));
    assertTrue(e.getMessage().contains("narrowed to layers [0]"), e.getMessage());
  }
}
