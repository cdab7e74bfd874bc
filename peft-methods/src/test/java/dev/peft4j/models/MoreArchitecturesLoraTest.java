package dev.peft4j.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.io.SafetensorsFile;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Gpt2;
import dev.peft4j.model.Heads;
import dev.peft4j.model.HfModels;
import dev.peft4j.testing.Fixtures;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import dev.peft4j.train.Trainer;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LoRA and IA³ (and DoRA, VeRA, FourierFT, AdaLoRA once each) on the attention modules of RoBERTa, DistilBERT and
 * GPT-2 (loaded from their transformers fixtures): identity at init, and one training step changes the adapter's
 * parameters and nothing else. Prompt learning refuses these graphs (they declare no prompt-learning hooks).
 */
class MoreArchitecturesLoraTest {

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("tiny-roberta LoRA", "tiny-roberta", Peft.lora(4).alpha(8).target("query", "value").build()),
        Arguments.of("tiny-roberta IA³", "tiny-roberta",
            Peft.ia3().target("key", "value", "output.dense").feedforward("output.dense").build()),
        Arguments.of("tiny-distilbert LoRA", "tiny-distilbert",
            Peft.lora(4).alpha(8).target("q_lin", "v_lin").build()),
        Arguments.of("tiny-distilbert IA³", "tiny-distilbert",
            Peft.ia3().target("k_lin", "v_lin", "lin2").feedforward("lin2").build()),
        Arguments.of("tiny-gpt2 LoRA", "tiny-gpt2", Peft.lora(4).alpha(8).target("c_attn").build()),
        Arguments.of("tiny-gpt2 IA³", "tiny-gpt2",
            Peft.ia3().target("c_attn", "mlp.c_proj").feedforward("mlp.c_proj").build()),
        // the other methods of the contract suite that target linear layers, once each
        Arguments.of("tiny-roberta DoRA", "tiny-roberta", Peft.dora(4).target("query", "value").build()),
        Arguments.of("tiny-distilbert VeRA", "tiny-distilbert", Peft.vera(4).target("q_lin", "v_lin").build()),
        Arguments.of("tiny-gpt2 FourierFT", "tiny-gpt2", Peft.fourierFt(16).zeroInit().target("c_attn").build()),
        Arguments.of("tiny-gpt2 DoRA", "tiny-gpt2", Peft.dora(4).target("c_attn", "c_fc").build()),
        Arguments.of("tiny-gpt2 AdaLoRA", "tiny-gpt2", Peft.adaLora(4, 2).totalStep(10).target("c_attn").build()),
        Arguments.of("tiny-gemma LoRA", "tiny-gemma", Peft.lora(4).alpha(8).target("q_proj", "v_proj").build()));
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"tiny-roberta", "tiny-distilbert", "tiny-gpt2"})
  void promptLearningRefusesTheseGraphsNamingTheMissingHooks(String fixture) throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir(fixture)).sameDiff();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Peft.promptTuning(4).apply(sd));
    assertTrue(e.getMessage().contains("lacks") && e.getMessage().contains("position_offset"), e.getMessage());
    assertFalse(sd.variableMap().keySet().stream().anyMatch(n -> n.startsWith("peft/")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void identityAtInitAndOneStepChangesOnlyTheAdapter(String name, String fixture, AdapterConfig config)
      throws IOException {
    SameDiff sd = HfModels.load(Fixtures.dir(fixture)).sameDiff();
    boolean decoder = fixture.equals("tiny-gpt2") || fixture.equals("tiny-gemma");
    Map<String, INDArray> inputs = new HashMap<>();
    try (SafetensorsFile g = SafetensorsFile.open(Fixtures.dir(fixture).resolve("golden.safetensors"))) {
      inputs.put("input_ids", g.read("input_ids"));
      inputs.put("attention_mask", g.read("attention_mask"));
      if (decoder) {
        inputs.put(Gpt2.LABELS, g.read("loss_labels"));
      }
    }
    if (!decoder) { // encoders: a mean-pooled classifier gives the loss
      Heads.sequenceClassification(sd, 32, 2, Heads.Pooling.MEAN, 7);
      inputs.put(Heads.LABELS, Nd4j.createFromArray(0L, 1L, 1L));
    }
    String out = decoder ? Gpt2.LOGITS : Heads.LOGITS;
    INDArray base = sd.output(inputs, out).get(out);

    PeftModel model = config.apply(sd);
    assertEquals(base, sd.output(inputs, out).get(out), name + ": identity at init");
    Map<String, INDArray> before = Graphs.parameters(sd);
    Trainer.builder(model).steps(1).learningRate(1e-2).progress(null).build()
        .fit(java.util.List.of(new Batch(inputs, inputs.get("attention_mask").sumNumber().longValue())));
    Map<String, INDArray> after = Graphs.parameters(sd);
    int changed = 0;
    for (Map.Entry<String, INDArray> e : before.entrySet()) {
      boolean same = e.getValue().equals(after.get(e.getKey()));
      if (e.getKey().startsWith("peft/")) {
        changed += same ? 0 : 1;
      } else {
        assertTrue(same, name + ": base array '" + e.getKey() + "' changed");
      }
    }
    assertTrue(changed > 0, name + ": no adapter parameter changed");
    assertFalse(base.equals(sd.output(inputs, out).get(out)), name + ": the step moved the output");
    assertEquals(java.util.List.of(), GraphRewriter.of(sd).checkLinks());
  }
}
