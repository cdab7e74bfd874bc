package dev.peft4j.methods;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import dev.peft4j.AdapterConfig;
import dev.peft4j.contract.Cases;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The registry is complete: every registered method has a factory in {@link Peft} and rows in the contract suite,
 * every row of the suite is of a registered method, and loading reads exactly the registered peft types. (The
 * comparison's coverage and the budget formulas are checked in peft-bench's {@code MethodRegistryTest}.)
 */
class PeftMethodsTest {

  @Test
  void everyRegisteredMethodHasAFactoryInPeft() {
    List<String> missing = new ArrayList<>();
    for (PeftMethod<?> m : PeftMethods.all()) {
      boolean found = false;
      for (Method f : Peft.class.getMethods()) {
        if (Modifier.isStatic(f.getModifiers()) && builds(f.getReturnType(), m.configType())) {
          found = true;
        }
      }
      if (!found) {
        missing.add(m.peftType());
      }
    }
    assertEquals(List.of(), missing, "registered methods without a factory in Peft");
  }

  /** A factory returns the config, or a builder whose build() returns it. */
  private static boolean builds(Class<?> type, Class<?> config) {
    if (type == config) {
      return true;
    }
    try {
      return type.getMethod("build").getReturnType() == config;
    } catch (NoSuchMethodException e) {
      return false;
    }
  }

  @Test
  void everyRegisteredMethodHasContractCasesAndEveryCaseIsRegistered() {
    Set<Class<?>> inSuite = Cases.cases().map(c -> c.config().get().getClass()).collect(Collectors.toSet());
    Set<String> withoutCases = new LinkedHashSet<>();
    for (PeftMethod<?> m : PeftMethods.all()) {
      if (inSuite.stream().noneMatch(m.configType()::isAssignableFrom)) {
        withoutCases.add(m.peftType());
      }
    }
    assertEquals(Set.of(), withoutCases, "registered methods without a row in the contract suite (Cases)");
    Set<String> unregistered = new LinkedHashSet<>();
    for (Class<?> c : inSuite) {
      if (PeftMethods.all().stream().noneMatch(m -> m.configType().isAssignableFrom(c))) {
        unregistered.add(c.getSimpleName());
      }
    }
    assertEquals(Set.of(), unregistered, "contract cases of configs that are not registered in PeftMethods");
  }

  @Test
  void loadingReadsExactlyTheRegisteredTypes() {
    assertEquals(PeftMethods.all().stream().map(PeftMethod::peftType).collect(Collectors.toSet()), Peft.LOADABLE);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftMethods.read(
        JsonParser.parseString("{\"peft_type\": \"OFT\"}").getAsJsonObject(), new HashSet<>()));
    assertEquals("peft_type 'OFT' is not supported; supported: " + Peft.LOADABLE, e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> PeftMethods.read(
        JsonParser.parseString("{\"peft_type\": 3}").getAsJsonObject(), new HashSet<>()));
    assertEquals("field 'peft_type' must be a string, got 3", e.getMessage());
  }

  @Test
  void everyConfigOfTheSuiteFindsItsMethodAndRoundTripsThroughItsReader() {
    Cases.cases().forEach(c -> {
      AdapterConfig config = c.config().get();
      PeftMethod<?> m = PeftMethods.of(config);
      assertEquals(config.peftType(), m.peftType(), c.name());
      Set<String> ignored = new HashSet<>();
      AdapterConfig read = PeftMethods.read(JsonParser.parseString(
          new com.google.gson.GsonBuilder().serializeNulls().create().toJson(config.toHfConfig())).getAsJsonObject(),
          ignored);
      assertEquals(config.toHfConfig(), read.toHfConfig(), c.name());
      assertTrue(ignored.isEmpty(), c.name() + " wrote fields its reader does not know: " + ignored);
    });
  }
}
