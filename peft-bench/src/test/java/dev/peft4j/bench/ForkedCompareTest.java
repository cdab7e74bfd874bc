package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A trial in its own JVM ({@link TrialProcess}): started with this JVM's class path, its result file collected. */
class ForkedCompareTest {

  @Test
  void aTrialRunsInAChildJvmAndItsResultComesBack(@TempDir Path tmp) throws IOException {
    Path out = tmp.resolve("out");
    Compare.Options options = Compare.Options.parse("--model", TinyTask.model(tmp).toString(), "--data",
        TinyTask.csv(tmp, 40).toString(), "--text-column", "sentence", "--label-column", "y", "--methods",
        "linear-probe", "--epochs", "1", "--batch", "4", "--seq", "16", "--train-rows", "8", "--workers", "1",
        "--out", out.toString());
    assertTrue(options.fork());
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    long start = System.nanoTime();
    Compare.Runs runs = Compare.run(options, new PrintStream(log, true, StandardCharsets.UTF_8));
    System.out.printf("forked trial: %.1f s%n", (System.nanoTime() - start) / 1e9);
    assertEquals(1, runs.results().size());
    CompareResult r = runs.results().get(0);
    assertEquals("linear-probe", r.method());
    assertEquals(66, r.trainableParams()); // the head: 32 × 2 + 2
    assertEquals(4, runs.runs().get("linear-probe").length);
    assertTrue(r.trainSeconds() > 0 && Double.isFinite(r.validationLoss()), r.toString());
    assertTrue(Files.isRegularFile(out.resolve("adapters/linear-probe/adapter_model.safetensors")));
    assertTrue(log.toString(StandardCharsets.UTF_8).contains("[1/1] linear-probe"), log.toString());
    // the trial's record stays, its spec, child result and log go
    try (var kept = Files.list(out.resolve(Compare.TRIALS))) {
      assertEquals(List.of("linear-probe-lr5e-03-seed7.json"), kept.map(p -> p.getFileName().toString()).toList());
    }
    JsonObject record = JsonParser.parseString(Files.readString(out.resolve(Compare.TRIALS)
        .resolve("linear-probe-lr5e-03-seed7.json"))).getAsJsonObject();
    assertTrue(record.get("wall_seconds").getAsDouble() > r.trainSeconds(), record.toString()); // with the JVM start
    assertEquals(1, record.get("session").getAsInt());
    assertEquals(r.peakRssBytes(), record.getAsJsonObject("result").get("peakRssBytes").getAsLong());
    if (Files.exists(Path.of("/proc/loadavg"))) {
      assertTrue(record.get("load_average_start").getAsDouble() >= 0, record.toString());
    }
  }
}
