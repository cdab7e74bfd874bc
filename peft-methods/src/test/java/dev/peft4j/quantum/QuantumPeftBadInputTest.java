package dev.peft4j.quantum;

import static dev.peft4j.testing.Refusals.assertRefusedUnchanged;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.PeftModel;
import dev.peft4j.io.AdapterFiles;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** Quantum-PEFT's refusals: each names what it found and what it expected, and leaves the model as it was. */
class QuantumPeftBadInputTest {

  @Test
  void widthWithALargePrimeFactorIsRefused() {
    // layers.0.fc reads 67 inputs: a prime, one 67-level qudit would cost 66 angles per layer
    IllegalArgumentException e = assertRefusedUnchanged(type -> Mlp.classifier(67, 8, 1, 3, type, 1),
        IllegalArgumentException.class, sd -> Peft.quantumPeft(2).target("fc").apply(sd),
        "layers.0.fc", "67", "64");
    System.out.println(e.getMessage());
    assertRefusedUnchanged(type -> Mlp.classifier(6, 2 * 71, 1, 3, type, 1), IllegalArgumentException.class,
        sd -> Peft.quantumPeft(2).target("fc").apply(sd), "142 = 2·71", "prime factor 71", "64");
  }

  @Test
  void rankAboveTheNarrowerWidthIsRefused() {
    // the head maps 8 → 3: K = 4 cannot have 4 orthonormal columns in 3 dimensions
    IllegalArgumentException e = assertRefusedUnchanged(ToyModels::mlp, IllegalArgumentException.class,
        sd -> Peft.quantumPeft(4).target("fc", "head").apply(sd), "K = 4", "min(8, 3) = 3", "'head'");
    System.out.println(e.getMessage());
  }

  @Test
  void circuitDepthsThatCannotBeExpressedAreRefused() {
    IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
        () -> Peft.quantumPeft(2).circuitLayers(0).target("fc").build());
    assertTrue(zero.getMessage().contains("circuit_layers must be >= 1") && zero.getMessage().contains("got 0"),
        zero.getMessage());
    IllegalArgumentException negative = assertThrows(IllegalArgumentException.class, () -> Circuit.of(8, -2));
    assertTrue(negative.getMessage().contains("got -2"), negative.getMessage());
    IllegalArgumentException one = assertThrows(IllegalArgumentException.class, () -> Circuit.of(1, 1));
    assertTrue(one.getMessage().contains("width >= 2") && one.getMessage().contains("got 1"), one.getMessage());
  }

  @Test
  void badConfigValuesNameTheValueAndTheRange() {
    assertMessage(() -> Peft.quantumPeft(0).target("fc").build(), "rank K must be > 0, got 0");
    assertMessage(() -> Peft.quantumPeft(2).scale(Double.NaN).target("fc").build(), "finite and non-zero, got NaN");
    assertMessage(() -> Peft.quantumPeft(2).build(), "no target modules");
    IllegalStateException twice = assertThrows(IllegalStateException.class,
        () -> Peft.quantumPeft(2).circuitLayers(2).circuitLayers(3));
    assertEquals("circuit_layers was already set to 2", twice.getMessage());
  }

  @Test
  void savedFileWithAnotherAngleCountIsRefused(@TempDir Path dir) throws IOException {
    SameDiff trained = ToyModels.mlp(DataType.FLOAT);
    PeftModel model = Peft.quantumPeft(3).target("fc").apply(trained);
    model.save(dir);
    // the file now claims L = 2: A(6) = 3·3 = 9 angles per V, but it holds L = 1's 2·3 = 6
    Path config = dir.resolve("adapter_config.json");
    JsonObject json = JsonParser.parseString(Files.readString(config)).getAsJsonObject();
    json.addProperty("circuit_layers", 2);
    Files.writeString(config, json.toString());
    Files.delete(dir.resolve(AdapterFiles.MANIFEST)); // edited by hand: the save's manifest would refuse it
    IllegalArgumentException e = assertRefusedUnchanged(ToyModels::mlp, IllegalArgumentException.class, sd -> {
      try {
        Peft.load(sd, dir);
      } catch (IOException io) {
        throw new IllegalStateException(io);
      }
    }, "layers.0.fc.quantum_peft_V_angles", "[6]", "[9]");
    System.out.println(e.getMessage());
  }

  @Test
  void savedFileWithAnotherRankIsRefused(@TempDir Path dir) throws IOException {
    PeftModel model = Peft.quantumPeft(3).target("fc").apply(ToyModels.mlp(DataType.FLOAT));
    model.save(dir);
    Path config = dir.resolve("adapter_config.json");
    JsonObject json = JsonParser.parseString(Files.readString(config)).getAsJsonObject();
    json.addProperty("r", 2);
    Files.writeString(config, json.toString());
    Files.delete(dir.resolve(AdapterFiles.MANIFEST)); // edited by hand: the save's manifest would refuse it
    SameDiff fresh = ToyModels.mlp(DataType.FLOAT);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Peft.load(fresh, dir));
    assertTrue(e.getMessage().contains("quantum_peft_lambda") && e.getMessage().contains("[3]")
        && e.getMessage().contains("[2]"), e.getMessage());
    Graphs.types(fresh).keySet().forEach(n -> assertTrue(!n.startsWith("peft/"), "left over " + n));
  }

  private static void assertMessage(Runnable action, String fragment) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, action::run);
    assertTrue(e.getMessage().contains(fragment), "'" + e.getMessage() + "' should contain '" + fragment + "'");
  }
}
