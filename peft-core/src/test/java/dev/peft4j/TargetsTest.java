package dev.peft4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.LinearModule;
import dev.peft4j.testing.ToyModels;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

class TargetsTest {

  private final GraphRewriter graph = GraphRewriter.of(ToyModels.attention(DataType.FLOAT));

  private List<String> select(Targets t) {
    return t.selectLinear(graph, "LoRA").stream().map(LinearModule::name).toList();
  }

  @Test
  void listEntriesMatchTheWholeNameOrADottedSuffix() {
    assertEquals(List.of("layers.0.self_attn.q_proj", "layers.0.self_attn.v_proj", "layers.1.self_attn.q_proj",
        "layers.1.self_attn.v_proj"), select(Targets.names("q_proj", "v_proj")));
    assertEquals(List.of("layers.1.mlp.up_proj"), select(Targets.names("layers.1.mlp.up_proj")));
    assertEquals(List.of("layers.0.self_attn.o_proj", "layers.1.self_attn.o_proj"),
        select(Targets.names("self_attn.o_proj")));
  }

  @Test
  void aSuffixMustStartAtADot() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> select(Targets.names("_proj")));
    assertTrue(e.getMessage().contains("[_proj] not found"), e.getMessage());
  }

  @Test
  void regexMustMatchTheWholeName() {
    assertEquals(List.of("layers.0.mlp.up_proj", "layers.0.mlp.down_proj"),
        select(Targets.regex("layers\\.0\\.mlp\\..*")));
    assertThrows(IllegalArgumentException.class, () -> select(Targets.regex("mlp")));
    assertThrows(IllegalArgumentException.class, () -> Targets.regex("(unclosed"));
  }

  @Test
  void allLinearSkipsTheOutputHead() {
    List<String> all = select(Targets.names(Targets.ALL_LINEAR));
    assertEquals(12, all.size());
    assertTrue(!all.contains("lm_head"));
    assertThrows(IllegalArgumentException.class, () -> Targets.names(Targets.ALL_LINEAR, "q_proj"));
  }

  @Test
  void excludeAndLayersFilter() {
    assertEquals(List.of("layers.1.self_attn.q_proj", "layers.1.self_attn.k_proj"),
        select(Targets.names("q_proj", "k_proj", "v_proj").exclude("v_proj").layers(1)));
    assertEquals(List.of("layers.0.mlp.up_proj", "layers.1.mlp.up_proj"),
        select(Targets.names(Targets.ALL_LINEAR).exclude("self_attn.q_proj", "k_proj", "v_proj", "o_proj",
            "down_proj")));
  }

  @Test
  void layerIndexIsReadLikeHuggingFace() {
    assertEquals(Optional.of(7), Targets.layerIndex("model.layers.7.mlp.up_proj"));
    assertEquals(Optional.of(3), Targets.layerIndex("encoder.layer.3.attention.self.query"));
    assertEquals(Optional.of(11), Targets.layerIndex("transformer.h.11.attn.c_attn"));
    assertEquals(Optional.empty(), Targets.layerIndex("lm_head"));
  }

  @Test
  void badSpecificationsAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> Targets.names(new String[0]));
    assertThrows(IllegalArgumentException.class, () -> Targets.names("q_proj", " "));
    assertThrows(IllegalArgumentException.class, () -> Targets.names("q_proj").layers(-1));
  }

  @Test
  void valueSemantics() {
    assertEquals(Targets.names("a", "b").exclude("c").layers(1, 2), Targets.names("a", "b").exclude("c").layers(2, 1));
    assertEquals(Targets.regex("x.*"), Targets.regex("x.*"));
    assertEquals("[a, b] exclude [c] layers [1, 2]", Targets.names("a", "b").exclude("c").layers(1, 2).toString());
  }
}
