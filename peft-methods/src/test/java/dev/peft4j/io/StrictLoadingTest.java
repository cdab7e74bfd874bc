package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.testing.ToyModels;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@link Peft#load}'s contract, case by case, on LoRA r=2 (and a bottleneck adapter) saved from the toy MLP: each bad
 * file is refused with the documented exception, a message naming the file, field or tensor and what was expected,
 * and the base unchanged. {@link AdapterFileFuzzTest} covers the same ground at random.
 */
class StrictLoadingTest {

  @TempDir
  Path tmp;

  private Path saved(String name, dev.peft4j.AdapterConfig config) throws IOException {
    return saved(name, config, ToyModels.mlp(DataType.FLOAT));
  }

  private Path saved(String name, dev.peft4j.AdapterConfig config, SameDiff base) throws IOException {
    Path dir = tmp.resolve(name);
    config.apply(base).save(dir);
    // the tests edit the files by hand, which the manifest of a peft4j save would refuse first
    java.nio.file.Files.delete(dir.resolve(dev.peft4j.io.AdapterFiles.MANIFEST));
    return dir;
  }

  private Path lora() throws IOException {
    return saved("lora", Peft.lora(2).alpha(4).target("fc").build());
  }

  private static INDArray output(SameDiff sd) {
    return Graphs.logits(sd, Graphs.batches(sd, 3, 1, 4).get(0));
  }

  /** Loads {@code dir} onto a fresh MLP, expecting {@code type} with every fragment, and the MLP unchanged. */
  private static <E extends Exception> E refused(Path dir, Class<E> type, String... fragments) {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    INDArray before = output(sd);
    var types = Graphs.types(sd);
    E e = assertThrows(type, () -> Peft.load(sd, dir));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should mention '" + f + "'");
    }
    assertEquals(types, Graphs.types(sd), "a refused load changed the variables");
    assertEquals(before, output(sd), "a refused load changed the output");
    return e;
  }

  private static void replaceInConfig(Path dir, String from, String to) throws IOException {
    Path config = dir.resolve(AdapterFiles.CONFIG);
    String text = Files.readString(config);
    assertTrue(text.contains(from), from + " not in " + text);
    Files.writeString(config, text.replace(from, to));
  }

  @Test
  void numbersMustBeJsonNumbers() throws IOException {
    for (String wrong : new String[] {"[2]", "\"2\"", "true", "[[[[2]]]]"}) {
      Path dir = lora();
      replaceInConfig(dir, "\"r\": 2", "\"r\": " + wrong);
      refused(dir, IOException.class, AdapterFiles.CONFIG, "field 'r' must be a number, got " + wrong);
      Files.walk(dir).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    Path dir = lora();
    replaceInConfig(dir, "\"lora_alpha\": 4.0", "\"lora_alpha\": true");
    refused(dir, IOException.class, "field 'lora_alpha' must be a number, got true");
  }

  @Test
  void patternsThatAreNotObjectsAreRefusedByName() throws IOException {
    for (String field : new String[] {"alpha_pattern", "rank_pattern"}) {
      Path dir = saved(field, Peft.lora(2).alpha(4).target("fc").build());
      replaceInConfig(dir, "\"" + field + "\": {}", "\"" + field + "\": [1]");
      refused(dir, IOException.class, "field '" + field + "' must be a JSON object, got [1]");
    }
  }

  @Test
  void nestingThousandsDeepIsRefusedBeforeParsingEvenInAnUnknownField() throws IOException {
    Path dir = lora();
    String deep = "[".repeat(100_000) + "]".repeat(100_000);
    replaceInConfig(dir, "\"r\": 2", "\"r\": 2, \"some_future_field\": " + deep);
    refused(dir, IOException.class, AdapterFiles.CONFIG, "nested more than 64 deep");
  }

  @Test
  void aNonUtf8ConfigNamesTheFileAndTheByteOffset() throws IOException {
    Path dir = lora();
    byte[] bytes = Files.readAllBytes(dir.resolve(AdapterFiles.CONFIG));
    int at = new String(bytes, StandardCharsets.UTF_8).indexOf("none");
    bytes[at] = (byte) 0xFF;
    Files.write(dir.resolve(AdapterFiles.CONFIG), bytes);
    refused(dir, IOException.class, dir.resolve(AdapterFiles.CONFIG).toString(), "byte " + at + " (0xFF)",
        "expected a UTF-8 JSON file");
  }

  @Test
  void missingFilesAndDirectoriesInTheirPlaceAreNamed() throws IOException {
    Path dir = lora();
    Files.delete(dir.resolve(AdapterFiles.WEIGHTS));
    refused(dir, IOException.class, dir.resolve(AdapterFiles.WEIGHTS) + ": not found");
    Files.createDirectory(dir.resolve(AdapterFiles.WEIGHTS));
    refused(dir, IOException.class, dir.resolve(AdapterFiles.WEIGHTS) + ": is a directory");
    Files.delete(dir.resolve(AdapterFiles.CONFIG));
    Files.createDirectory(dir.resolve(AdapterFiles.CONFIG));
    refused(dir, IOException.class, dir.resolve(AdapterFiles.CONFIG) + ": is a directory");
    refused(tmp.resolve("nowhere"), IOException.class, tmp.resolve("nowhere") + ": not found");
  }

  @Test
  void anOversizedConfigIsRefusedBeforeItIsRead() throws IOException {
    Path dir = lora();
    replaceInConfig(dir, "\"r\": 2", "\"r\": 2, \"pad\": [" + "0,".repeat(2_200_000) + "0]");
    refused(dir, IOException.class, "bytes; an adapter config may have at most 4194304");
  }

  @Test
  void anIntegerTensorWhereFloatsAreStoredIsRefusedNotCast() throws IOException {
    Path dir = lora();
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (String n : f.names()) {
        tensors.put(n, f.read(n));
      }
    }
    String key = tensors.keySet().iterator().next();
    tensors.put(key, tensors.get(key).castTo(DataType.INT32));
    Safetensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    refused(dir, IllegalArgumentException.class, "tensor '" + key.substring(AdapterFiles.PREFIX.length())
        + "' is INT, but this model stores it as FLOAT");
  }

  @Test
  void halfPrecisionFilesStillLoadAsFloats() throws IOException {
    Path dir = lora();
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(AdapterFiles.WEIGHTS))) {
      for (String n : f.names()) {
        tensors.put(n, f.read(n).castTo(DataType.BFLOAT16));
      }
    }
    Safetensors.write(dir.resolve(AdapterFiles.WEIGHTS), tensors, Map.of("format", "pt"));
    PeftModel m = Peft.load(ToyModels.mlp(DataType.FLOAT), dir);
    assertEquals(2L * (ToyModels.MLP_IN + ToyModels.MLP_HIDDEN) + 2L * (2 * ToyModels.MLP_HIDDEN),
        m.trainableParameters().count());
  }

  @Test
  void hugeSizesAreRefusedBeforeAnythingIsAllocated() throws IOException {
    for (String r : new String[] {"2147483647", "100000000"}) {
      Path dir = lora();
      replaceInConfig(dir, "\"r\": 2", "\"r\": " + r);
      long start = System.nanoTime();
      // this message comes from the closed-form check that runs before the adapter is built
      refused(dir, IllegalArgumentException.class, "the config (LORA) needs", "but adapter_model.safetensors holds");
      System.out.printf("r = %s refused in %.1f ms%n", r, (System.nanoTime() - start) / 1e6);
      Files.walk(dir).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
    Path dir = saved("bottleneck", Peft.bottleneck(2).attentionOutput("layers.0.fc").ffnOutput("layers.1.fc").build());
    replaceInConfig(dir, "\"bottleneck_size\": 2", "\"bottleneck_size\": 1048576");
    long start = System.nanoTime();
    refused(dir, IllegalArgumentException.class, "the config (BOTTLENECK) needs");
    System.out.printf("bottleneck_size 1048576 refused in %.1f ms%n", (System.nanoTime() - start) / 1e6);
  }

  @Test
  void sizesBeyondOneJavaArrayAreNamedWhenAppliedDirectly() {
    SameDiff sd = ToyModels.mlp(DataType.FLOAT);
    var lora = Peft.lora(Integer.MAX_VALUE).target("fc").build();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> lora.apply(sd));
    assertTrue(e.getMessage().contains("r = 2147483647 on module 'layers.0.fc'"), e.getMessage());
    var bottleneck = Peft.bottleneck(Integer.MAX_VALUE).attentionOutput("layers.0.fc").ffnOutput("layers.1.fc")
        .build();
    e = assertThrows(IllegalArgumentException.class, () -> bottleneck.apply(ToyModels.mlp(DataType.FLOAT)));
    assertTrue(e.getMessage().contains("bottleneck_size 2147483647 on module 'layers.0.fc'"), e.getMessage());
    var vera = Peft.vera(Integer.MAX_VALUE).target("fc").build();
    e = assertThrows(IllegalArgumentException.class, () -> vera.apply(ToyModels.mlp(DataType.FLOAT)));
    assertTrue(e.getMessage().contains("VeRA r = 2147483647 needs"), e.getMessage());
  }

  @Test
  void unknownEnumValuesNameTheFieldAndTheChoices() throws IOException {
    Path dir = saved("prompt", Peft.promptTuning(2).seed(1).build(), ToyModels.tokens(DataType.FLOAT));
    Path config = dir.resolve(AdapterFiles.CONFIG);
    Files.writeString(config, Files.readString(config).replace("\"RANDOM\"", "\"SOMETHING\""));
    SameDiff sd = ToyModels.tokens(DataType.FLOAT);
    IOException e = assertThrows(IOException.class, () -> Peft.load(sd, dir));
    assertTrue(e.getMessage().contains("field 'prompt_tuning_init' must be one of [RANDOM, SAMPLE_VOCAB, TEXT], got "
        + "\"SOMETHING\""), e.getMessage());
  }

  @Test
  void loraOptionsThatChangeTheForwardPassAreRefusedNotIgnored() throws IOException {
    Path dir = lora();
    replaceInConfig(dir, "\"r\": 2", "\"r\": 2, \"layer_replication\": [[0, 1], [0, 1]]");
    refused(dir, IOException.class, "layer_replication is not supported; only null, got [[0,1],[0,1]]");
    Path other = saved("qalora", Peft.lora(2).alpha(4).target("fc").build());
    replaceInConfig(other, "\"r\": 2", "\"r\": 2, \"use_qalora\": \"yes\"");
    refused(other, IOException.class, "field 'use_qalora' must be true or false, got \"yes\"");
  }
}
