package dev.peft4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import dev.peft4j.PeftModel;
import dev.peft4j.contract.Cases;
import dev.peft4j.contract.Cases.Case;
import dev.peft4j.methods.Peft;
import dev.peft4j.testing.Graphs;
import dev.peft4j.train.Batch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The adapter-file fuzzer: seeded mutations of adapter directories saved by every method that saves files (the first
 * contract case of each {@code peft_type}, and DoRA), loaded onto one shared base model per method. The JSON config
 * gets type swaps, huge and odd numbers, deep nesting, removed and added fields, long strings, unicode and invalid
 * bytes; the safetensors file gets header edits (dtype, shape, offsets, names, metadata), re-encodings, truncations
 * and bit flips. Every case must end in one of:
 * <ul>
 *   <li>a refusal with one of {@link Peft#load}'s documented exceptions ({@link IOException} or
 *       {@link IllegalArgumentException}) with a message, the base model unchanged (variable types, op count and
 *       output bit for bit);
 *   <li>a load whose adapter holds exactly the file's tensors (so any change of output is explained by the tensor
 *       data), whose output equals the unmutated adapter's when neither the tensors nor the config's values changed,
 *       and whose unload restores the base output bit for bit.
 * </ul>
 * {@code -Dpeft4j.fuzz.seed=…} and {@code -Dpeft4j.fuzz.cases=…} rerun or widen it; the seed is printed.
 */
class AdapterFileFuzzTest {

  private static final long DEFAULT_SEED = 0x5EEDF11EL;
  private static final int DEFAULT_CASES = 10_000;
  private static final Gson GSON = new GsonBuilder().serializeNulls().create();
  /** Stands for a raw JSON text in a serialised config, replaced after serialising. */
  private static final String RAW = "@@raw@@";
  /** The test thread's CPU time, a measure of the fuzzer's cost that other processes on the machine do not inflate. */
  private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory
      .getThreadMXBean();

  /** What happened to one case. */
  enum Outcome {
    REFUSED_IO, REFUSED_ARGUMENT, LOADED_UNCHANGED, LOADED_TENSORS_CHANGED, LOADED_CONFIG_CHANGED
  }

  /** What a case did to the files. */
  enum Mutation {
    JSON_TYPE_SWAP, JSON_NUMBER, JSON_DEEP_NESTING, JSON_REMOVE_FIELD, JSON_ADD_FIELD, JSON_BAD_BYTES, JSON_TEXT,
    JSON_PEFT_TYPE, ST_TRUNCATE, ST_HEADER_BITS, ST_HEADER_LENGTH, ST_HEADER_EDIT, ST_REENCODE, ST_DATA_BITS
  }

  /** One saved adapter and the shared base it is fuzzed on. */
  private record Source(String name, SameDiff base, Batch batch, INDArray baseOutput, Map<String, VariableType> types,
      int ops, byte[] config, byte[] weights, Map<String, INDArray> tensors, INDArray adapterOutput,
      Map<String, Object> hfConfig) {}

  @Test
  void everyMutatedAdapterFileIsRefusedCleanlyOrLoadsWhatItHolds(@TempDir Path tmp) throws IOException {
    long seed = Long.getLong("peft4j.fuzz.seed", DEFAULT_SEED);
    int cases = Integer.getInteger("peft4j.fuzz.cases", DEFAULT_CASES);
    System.out.println("AdapterFileFuzzTest: seed " + seed + ", " + cases + " cases");
    long start = System.nanoTime();
    long cpuStart = CPU.getCurrentThreadCpuTime();
    List<Source> sources = sources(tmp.resolve("saved"));
    long setup = System.nanoTime();
    Random random = new Random(seed);
    Path dir = tmp.resolve("fuzz");
    Files.createDirectories(dir);
    Map<Mutation, Map<Outcome, Integer>> counts = new EnumMap<>(Mutation.class);
    Map<String, Integer> perSource = new TreeMap<>();
    Map<Outcome, Long> nanos = new EnumMap<>(Outcome.class);
    byte[][] written = new byte[2][];
    for (int i = 0; i < cases; i++) {
      Source s = sources.get(random.nextInt(sources.size()));
      Mutation m = Mutation.values()[random.nextInt(Mutation.values().length)];
      byte[] config = s.config;
      byte[] weights = s.weights;
      if (m.name().startsWith("JSON")) {
        config = mutateConfig(m, s.config, random);
      } else {
        weights = mutateWeights(m, s.weights, random);
      }
      if (config != written[0]) { // same array: the file holds it already
        Files.write(dir.resolve(AdapterFiles.CONFIG), config);
        written[0] = config;
      }
      if (weights != written[1]) {
        Files.write(dir.resolve(AdapterFiles.WEIGHTS), weights);
        written[1] = weights;
      }
      String where = String.format("seed %s, case %s (%s, %s)", seed, i, s.name, m);
      long t0 = CPU.getCurrentThreadCpuTime();
      Outcome outcome = run(s, dir, where);
      nanos.merge(outcome, CPU.getCurrentThreadCpuTime() - t0, Long::sum);
      counts.computeIfAbsent(m, k -> new EnumMap<>(Outcome.class)).merge(outcome, 1, Integer::sum);
      perSource.merge(s.name, 1, Integer::sum);
    }
    long end = System.nanoTime();
    report(seed, cases, counts, perSource.size(), (setup - start) / 1e9, (end - setup) / 1e9,
        (CPU.getCurrentThreadCpuTime() - cpuStart) / 1e9);
    System.out.println("CPU seconds per outcome: " + nanos.entrySet().stream()
        .map(e -> e.getKey() + " " + String.format("%.1f", e.getValue() / 1e9)).collect(Collectors.joining(", ")));
    Map<Outcome, Integer> total = totals(counts);
    assertEquals(cases, total.values().stream().mapToInt(Integer::intValue).sum());
    // the fuzzer must reach every kind of ending, or its mutations have stopped getting past the first checks
    for (Outcome o : Outcome.values()) {
      assertTrue(total.getOrDefault(o, 0) > 0, "no case ended " + o + ": " + total);
    }
  }

  /** Loads the mutated directory and checks the case's invariants; returns its outcome. */
  private static Outcome run(Source s, Path dir, String where) throws IOException {
    PeftModel loaded;
    try {
      loaded = Peft.load(s.base, dir);
    } catch (IOException | IllegalArgumentException e) {
      assertTrue(e.getMessage() != null && e.getMessage().length() > 10, where + ": refusal without a message: " + e);
      assertBaseUnchanged(s, where + " refused (" + e.getMessage() + ")");
      return e instanceof IOException ? Outcome.REFUSED_IO : Outcome.REFUSED_ARGUMENT;
    } catch (Throwable e) { // StackOverflowError, ArithmeticException, ClassCastException, OutOfMemoryError, …
      fail(where + ": not a documented refusal: " + e, e);
      throw new AssertionError(e);
    }
    Outcome outcome;
    try {
      Map<String, INDArray> held = loaded.adapter(PeftModel.DEFAULT_ADAPTER).stateDict();
      Map<String, INDArray> inFile = tensorsOf(dir.resolve(AdapterFiles.WEIGHTS));
      assertEquals(inFile.keySet(), held.keySet(), where + ": loaded tensors differ from the file's");
      boolean sameTensors = true;
      for (var e : inFile.entrySet()) {
        float[] file = floats(e.getValue());
        float[] adapter = floats(held.get(e.getKey()));
        assertArrayEquals(file, adapter, where + ": tensor " + e.getKey() + " is not what the file holds");
      }
      for (var e : s.tensors.entrySet()) {
        sameTensors &= java.util.Arrays.equals(floats(e.getValue()), floats(inFile.get(e.getKey())));
      }
      boolean sameConfig = s.hfConfig.equals(loaded.adapter(PeftModel.DEFAULT_ADAPTER).config().toHfConfig());
      INDArray output = Graphs.logits(s.base, s.batch);
      if (sameTensors && sameConfig) {
        assertEquals(s.adapterOutput, output, where + ": same tensors and config, another output");
        outcome = Outcome.LOADED_UNCHANGED;
      } else {
        outcome = sameConfig ? Outcome.LOADED_TENSORS_CHANGED : Outcome.LOADED_CONFIG_CHANGED;
      }
    } finally {
      loaded.unload();
    }
    assertBaseUnchanged(s, where + " loaded and unloaded");
    return outcome;
  }

  /** The values as floats in C order (bit-exact for F32, F16 and BF16). */
  private static float[] floats(INDArray a) {
    return a.length() == 0 ? new float[0] : a.castTo(DataType.FLOAT).dup('c').reshape(a.length()).toFloatVector();
  }

  private static void assertBaseUnchanged(Source s, String where) {
    assertEquals(s.ops, s.base.getOps().size(), where + ": op count");
    assertEquals(s.types, Graphs.types(s.base), where + ": variables");
    assertEquals(s.baseOutput, Graphs.logits(s.base, s.batch), where + ": base output");
  }

  // ---------------------------------------------------------------------------------------------------- sources

  /** Saves one adapter per method, its trainable values moved off the identity by seeded noise. */
  private static List<Source> sources(Path root) throws IOException {
    Map<String, Case> firstPerMethod = new LinkedHashMap<>();
    Cases.cases().forEach(c -> {
      Map<String, Object> hf = c.config().get().toHfConfig();
      firstPerMethod.putIfAbsent(hf.get("peft_type") + (Boolean.TRUE.equals(hf.get("use_dora")) ? "+dora" : ""), c);
    });
    List<Source> out = new ArrayList<>();
    for (Case c : firstPerMethod.values()) {
      SameDiff trainedOn = c.base();
      PeftModel model = c.config().get().apply(trainedOn);
      Random noise = new Random(out.size());
      for (String p : model.trainableParameters().names()) { // off the identity, without the cost of training
        INDArray a = trainedOn.getVariable(p).getArr();
        a.addi(Nd4j.rand(a.dataType(), a.shape()).subi(0.5).muli(0.2 + 0.1 * noise.nextDouble()));
      }
      Path dir = root.resolve("s" + out.size());
      model.save(dir);
      SameDiff base = c.base();
      Batch batch = Graphs.batches(base, 8, 1, 4).get(0);
      INDArray baseOutput = Graphs.logits(base, batch);
      Map<String, VariableType> types = Graphs.types(base);
      int ops = base.getOps().size();
      PeftModel loaded = Peft.load(base, dir);
      INDArray adapterOutput = Graphs.logits(base, batch);
      assertFalse(adapterOutput.equals(baseOutput), c.name() + ": the trained adapter should change the output");
      Map<String, Object> hf = loaded.adapter(PeftModel.DEFAULT_ADAPTER).config().toHfConfig();
      loaded.unload();
      assertEquals(baseOutput, Graphs.logits(base, batch), c.name());
      out.add(new Source(c.name(), base, batch, baseOutput, types, ops,
          Files.readAllBytes(dir.resolve(AdapterFiles.CONFIG)), Files.readAllBytes(dir.resolve(AdapterFiles.WEIGHTS)),
          tensorsOf(dir.resolve(AdapterFiles.WEIGHTS)), adapterOutput, hf));
    }
    return out;
  }

  /** The file's tensors keyed as an adapter's state dict, in their own dtype. */
  private static Map<String, INDArray> tensorsOf(Path weights) throws IOException {
    Map<String, INDArray> out = new TreeMap<>();
    try (SafetensorsFile file = SafetensorsFile.open(weights)) {
      for (String name : file.names()) {
        out.put(name.startsWith(AdapterFiles.PREFIX) ? name.substring(AdapterFiles.PREFIX.length()) : name,
            file.read(name));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------- config mutations

  private static final List<String> SIZE_FIELDS = List.of("r", "lora_alpha", "bottleneck_size", "num_virtual_tokens",
      "n_frequency", "init_r", "target_r", "token_dim", "num_layers", "num_attention_heads", "encoder_hidden_size",
      "scaling", "lora_dropout", "vera_dropout", "d_initial", "projection_prng_key", "random_loc_seed", "k",
      "num_transformer_submodules", "layers_to_transform", "total_step", "tinit", "tfinal", "deltaT");
  private static final List<String> NUMBERS = List.of("2147483647", "2147483648", "-2147483648", "100000000",
      "1048576", "1e8", "1e308", "1e999", "-1e999", "1e-999", "0", "-1", "3.5", "-0.0", "9223372036854775808", "1",
      "2", "65536");
  private static final List<String> WRONG_TYPES = List.of("[4]", "\"8\"", "true", "false", "{}", "[]", "null",
      "[[[[1]]]]", "{\"a\": 1}", "\"\"", "[\"q_proj\", 3]", "[true]", "\"NaN\"", "[null]");
  private static final List<String> PEFT_TYPES = List.of("LORA", "ADALORA", "IA3", "VERA", "FOURIERFT", "BOTTLENECK",
      "PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING", "HYBRID", "BITFIT", "LN_TUNING", "QUANTUM_PEFT", "lora", "",
      "LOHA", "OFT");

  private static byte[] mutateConfig(Mutation m, byte[] original, Random random) {
    JsonObject json = JsonParser.parseString(new String(original, StandardCharsets.UTF_8)).getAsJsonObject();
    List<String> fields = new ArrayList<>(json.keySet());
    String field = fields.get(random.nextInt(fields.size()));
    String raw = null;
    switch (m) {
      case JSON_TYPE_SWAP -> {
        JsonElement e = json.get(field);
        raw = random.nextInt(3) == 0 && e != null && !e.isJsonNull()
            ? pick(random, List.of("[" + e + "]", "\"" + e.toString().replace("\"", "") + "\"", "{\"v\": " + e + "}"))
            : pick(random, WRONG_TYPES);
      }
      case JSON_NUMBER -> {
        List<String> numeric = fields.stream().filter(f -> json.get(f).isJsonPrimitive()
            && json.get(f).getAsJsonPrimitive().isNumber()).collect(Collectors.toCollection(ArrayList::new));
        numeric.addAll(SIZE_FIELDS.stream().filter(json::has).toList());
        field = numeric.isEmpty() || random.nextInt(4) == 0 ? pick(random, SIZE_FIELDS) : pick(random, numeric);
        raw = pick(random, NUMBERS);
      }
      case JSON_DEEP_NESTING -> {
        if (random.nextBoolean()) {
          field = "future_" + random.nextInt(100); // an unknown field nobody reads must not overflow the stack either
        }
        int depth = pick(random, List.of(2, 20, 63, 64, 65, 100, 5_000, 50_000));
        boolean objects = random.nextBoolean();
        raw = (objects ? "{\"a\":" : "[").repeat(depth) + "1" + (objects ? "}" : "]").repeat(depth);
      }
      case JSON_REMOVE_FIELD -> json.remove(field);
      case JSON_ADD_FIELD -> {
        field = pick(random, List.of("future_option", "use_dora", "use_rslora", "fan_in_fan_out", "bias",
            "alpha_pattern", "rank_pattern", "n_frequency_pattern", "layers_pattern", "megatron_config",
            "modules_to_save", "exclude_modules", "init_lora_weights", "save_projection"));
        raw = pick(random, List.of("{\"x\": 2}", "[\"fc\"]", "true", "\"all\"", "7", "{\"fc\": [true, false]}",
            "{\"fc\": 3}", "\"gaussian\"", "[0]", "{\"\": null}"));
      }
      case JSON_BAD_BYTES -> {
        raw = random.nextInt(3) == 0 ? "\"" + "é漢\uD83D\uDE00".repeat(1 + random.nextInt(3)) + "\""
            : "\"" + "x".repeat(pick(random, List.of(65_535, 65_537, 200_000))) + "\"";
        if (random.nextBoolean()) {
          byte[] text = original.clone();
          byte[] bad = pick(random, List.of(new byte[] {(byte) 0xFF}, new byte[] {(byte) 0xC3, 0x28},
              new byte[] {(byte) 0x80}, new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80},
              new byte[] {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}));
          int at = random.nextInt(text.length);
          System.arraycopy(bad, 0, text, at, Math.min(bad.length, text.length - at));
          return text;
        }
      }
      case JSON_TEXT -> {
        byte[] text = original.clone();
        if (random.nextBoolean()) {
          return java.util.Arrays.copyOf(text, random.nextInt(text.length));
        }
        for (int i = 0, n = 1 + random.nextInt(3); i < n; i++) {
          text[random.nextInt(text.length)] = (byte) pick(random, List.of('{', '}', '[', ']', '"', ',', ':', '1',
              '-', 'e', ' ', '\\', 'n', '\0')).charValue();
        }
        return text;
      }
      case JSON_PEFT_TYPE -> {
        field = "peft_type";
        raw = GSON.toJson(pick(random, PEFT_TYPES));
      }
      default -> throw new IllegalStateException(m.name());
    }
    if (raw != null) {
      json.add(field, new JsonPrimitive(RAW));
    }
    String text = GSON.toJson(json);
    if (raw != null) {
      text = text.replace("\"" + RAW + "\"", raw);
    }
    return text.getBytes(StandardCharsets.UTF_8);
  }

  // ------------------------------------------------------------------------------------------ weights mutations

  private static final List<String> DTYPES = List.of("F32", "I32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "I8",
      "U32", "F8_E4M3", "f32", "");

  private static byte[] mutateWeights(Mutation m, byte[] original, Random random) throws IOException {
    long headerLength = ByteBuffer.wrap(original, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    int dataStart = 8 + (int) headerLength;
    byte[] out = original.clone();
    switch (m) {
      case ST_TRUNCATE -> {
        return java.util.Arrays.copyOf(original, random.nextInt(original.length));
      }
      case ST_HEADER_BITS -> {
        for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
          int at = random.nextInt(dataStart);
          out[at] ^= (byte) (1 << random.nextInt(8));
        }
      }
      case ST_HEADER_LENGTH -> {
        long wrong = pick(random, List.of(headerLength + 1 + random.nextInt(64), headerLength - 1 - random.nextInt(64),
            0L, 1L, -1L, (long) original.length, 1L << 40, headerLength * 2));
        ByteBuffer.wrap(out, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(wrong);
      }
      case ST_HEADER_EDIT -> {
        return editHeader(original, dataStart, random);
      }
      case ST_REENCODE -> {
        return reencode(original, random);
      }
      case ST_DATA_BITS -> {
        if (dataStart < original.length) {
          for (int i = 0, n = 1 + random.nextInt(3); i < n; i++) {
            int at = dataStart + random.nextInt(original.length - dataStart);
            out[at] ^= (byte) (1 << random.nextInt(8));
          }
        }
      }
      default -> throw new IllegalStateException(m.name());
    }
    return out;
  }

  /** Rewrites one entry of the header (its dtype, shape, offsets or name) or the metadata; the data stays. */
  private static byte[] editHeader(byte[] original, int dataStart, Random random) {
    JsonObject header = JsonParser.parseString(new String(original, 8, dataStart - 8, StandardCharsets.UTF_8))
        .getAsJsonObject();
    List<String> names = header.keySet().stream().filter(k -> !k.equals("__metadata__")).toList();
    String name = pick(random, names);
    JsonObject entry = header.getAsJsonObject(name);
    JsonArray shape = entry.getAsJsonArray("shape");
    switch (random.nextInt(8)) {
      case 0 -> entry.addProperty("dtype", pick(random, DTYPES));
      case 1 -> { // reversed, grown, dropped or absurd dimensions
        JsonArray s = new JsonArray();
        switch (random.nextInt(4)) {
          case 0 -> {
            List<JsonElement> dims = new ArrayList<>(shape.asList());
            java.util.Collections.reverse(dims);
            dims.forEach(s::add);
          }
          case 1 -> shape.asList().forEach(d -> s.add(d.getAsLong() + 1));
          case 2 -> s.add(shape.asList().stream().mapToLong(JsonElement::getAsLong).reduce(1, (a, b) -> a * b));
          default -> s.add(pick(random, List.of(-1L, 1L << 40, Long.MAX_VALUE, 0L)));
        }
        entry.add("shape", s);
      }
      case 2 -> {
        JsonArray offsets = entry.getAsJsonArray("data_offsets");
        long begin = offsets.get(0).getAsLong();
        long end = offsets.get(1).getAsLong();
        JsonArray o = new JsonArray();
        long shift = pick(random, List.of(-4L, 4L, -1L, 1L << 33));
        o.add(random.nextBoolean() ? begin + shift : end);
        o.add(random.nextBoolean() ? end + shift : begin);
        entry.add("data_offsets", o);
      }
      case 3 -> { // renamed: another module, the prefix dropped, an unknown key
        header.remove(name);
        header.add(pick(random, List.of(name + "x", name.replace(AdapterFiles.PREFIX, ""), "base_model.model.extra",
            name.replace("weight", "bias"), "prompt_embeddings", pick(random, names) + ".copy")), entry);
      }
      case 4 -> header.remove(name);
      case 5 -> { // two names swap their entries: both load, with each other's data where shapes agree
        String other = pick(random, names);
        JsonObject otherEntry = header.getAsJsonObject(other);
        header.add(name, otherEntry);
        header.add(other, entry);
      }
      case 6 -> header.add("__metadata__", pick(random, List.of((JsonElement) JsonParser.parseString("{\"format\":"
          + " \"tf\"}"), JsonParser.parseString("{\"format\": 3}"), JsonParser.parseString("[]"))));
      default -> entry.add(pick(random, List.of("dtype", "shape", "data_offsets", "extra")), pick(random,
          List.of(new JsonPrimitive("x"), new JsonPrimitive(3), new JsonArray(), new JsonObject())));
    }
    byte[] headerBytes = GSON.toJson(header).getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
    out.writeBytes(headerBytes);
    out.write(original, dataStart, original.length - dataStart);
    return out.toByteArray();
  }

  /**
   * A well-formed file whose tensors are re-encoded: one tensor as another dtype (F16/BF16, which load as floats with
   * their rounded values; I32/F64/I8, which must be refused), or one tensor dropped, or one more added.
   */
  private static byte[] reencode(byte[] original, Random random) throws IOException {
    Map<String, INDArray> tensors = new LinkedHashMap<>();
    Path f = Files.createTempFile("fuzz", ".safetensors");
    try {
      Files.write(f, original);
      try (SafetensorsFile file = SafetensorsFile.open(f)) {
        for (String name : file.names()) {
          tensors.put(name, file.read(name));
        }
      }
      String name = pick(random, List.copyOf(tensors.keySet()));
      switch (random.nextInt(4)) {
        case 0, 1 -> tensors.put(name, tensors.get(name).castTo(pick(random, List.of(DataType.HALF,
            DataType.BFLOAT16, DataType.INT32, DataType.DOUBLE, DataType.INT8, DataType.INT64))));
        case 2 -> tensors.remove(name);
        default -> tensors.put(name + ".extra", tensors.get(name).dup());
      }
      Safetensors.write(f, tensors, Map.of("format", "pt"));
      return Files.readAllBytes(f);
    } finally {
      Files.deleteIfExists(f);
    }
  }

  // ------------------------------------------------------------------------------------------------- reporting

  private static Map<Outcome, Integer> totals(Map<Mutation, Map<Outcome, Integer>> counts) {
    Map<Outcome, Integer> total = new EnumMap<>(Outcome.class);
    counts.values().forEach(byOutcome -> byOutcome.forEach((o, n) -> total.merge(o, n, Integer::sum)));
    return total;
  }

  private static void report(long seed, int cases, Map<Mutation, Map<Outcome, Integer>> counts, int methods,
      double setupSeconds, double fuzzSeconds, double cpuSeconds) {
    StringBuilder b = new StringBuilder(String.format("AdapterFileFuzzTest: seed %s, %s cases over %s methods, setup "
        + "%.1f s, fuzzing %.1f s (wall); %.1f s of the test thread's CPU time%n", seed, cases, methods, setupSeconds,
        fuzzSeconds, cpuSeconds));
    Function<Map<Outcome, Integer>, String> row = byOutcome -> java.util.Arrays.stream(Outcome.values())
        .map(o -> String.format("%8d", byOutcome.getOrDefault(o, 0))).collect(Collectors.joining());
    b.append(String.format("%-18s", "mutation")).append(java.util.Arrays.stream(Outcome.values())
        .map(o -> String.format("%8s", abbreviation(o))).collect(Collectors.joining())).append('\n');
    counts.forEach((m, byOutcome) -> b.append(String.format("%-18s", m)).append(row.apply(byOutcome)).append('\n'));
    b.append(String.format("%-18s", "total")).append(row.apply(totals(counts)));
    System.out.println(b);
  }

  private static String abbreviation(Outcome o) {
    return switch (o) {
      case REFUSED_IO -> "io";
      case REFUSED_ARGUMENT -> "arg";
      case LOADED_UNCHANGED -> "same";
      case LOADED_TENSORS_CHANGED -> "tensors";
      case LOADED_CONFIG_CHANGED -> "config";
    };
  }

  private static <T> T pick(Random random, List<T> values) {
    return values.get(random.nextInt(values.size()));
  }
}
