package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.methods.ParameterBudget;
import dev.peft4j.methods.PeftMethod;
import dev.peft4j.methods.PeftMethods;
import dev.peft4j.model.BertConfig;
import java.io.IOException;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Every method registered in {@link PeftMethods} is in the comparison, and each comparison config's closed-form count
 * ({@link ParameterBudget#count}, through the registry's formula) equals the count its config computes on the graph
 * and the trainable parameters it really creates on MiniLM with a classifier head.
 */
class MethodRegistryTest {

  @Test
  void everyRegisteredMethodIsCompared() {
    List<AdapterConfig> compared = CompareMethods.all().stream().map(m -> m.config(1, 40)).toList();
    Set<String> missing = new LinkedHashSet<>();
    for (PeftMethod<?> m : PeftMethods.all()) {
      if (compared.stream().noneMatch(m.configType()::isInstance)) {
        missing.add(m.peftType());
      }
    }
    assertEquals(Set.of(), missing, "registered methods missing from CompareMethods");
  }

  @Test
  void budgetOfEveryComparedConfigEqualsWhatItCreatesOnMiniLm() throws IOException {
    ParameterBudget budget = ParameterBudget.of(ParameterBudget.Shape.of(BertConfig.miniLm()).withClassifier(2));
    SameDiff graph = Compare.classifier(null, 16, 2, 7);
    for (CompareMethods.Method m : CompareMethods.all()) {
      AdapterConfig config = m.config(1, 40);
      long closedForm = budget.count(config);
      assertEquals(closedForm, config.parameterCount(graph), m.name() + ": budget against the config's own count");
      PeftModel applied = config.apply(graph);
      assertEquals(closedForm, applied.trainableParameters().count(), m.name() + ": budget against the graph");
      applied.unload();
    }
  }
}
