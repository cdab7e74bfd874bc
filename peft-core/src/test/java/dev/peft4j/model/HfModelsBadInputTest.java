package dev.peft4j.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A broken checkpoint is rejected with an error naming the file and the problem; no graph comes back. */
class HfModelsBadInputTest {

  @TempDir
  Path tmp;

  /** A copy of a fixture checkpoint that a test may break. */
  private Path copy(String fixture) throws IOException {
    Path source = HfModelsTest.fixture(fixture);
    Path target = tmp.resolve(fixture);
    Files.createDirectories(target);
    try (Stream<Path> files = Files.list(source)) {
      for (Path f : files.toList()) {
        Files.copy(f, target.resolve(f.getFileName()));
      }
    }
    return target;
  }

  private static void rejects(Path dir, String... fragments) {
    IOException e = assertThrows(IOException.class, () -> HfModels.load(dir));
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should mention '" + f + "'");
    }
  }

  @Test
  void missingDirectoryOrConfig() throws IOException {
    rejects(tmp.resolve("nowhere"), "nowhere", "no config.json");
    Path dir = copy("tiny-llama");
    Files.delete(dir.resolve("config.json"));
    rejects(dir, "no config.json");
  }

  @Test
  void missingWeights() throws IOException {
    Path dir = copy("tiny-llama");
    Files.delete(dir.resolve("model.safetensors"));
    rejects(dir, "no model.safetensors or model.safetensors.index.json");
  }

  @Test
  void truncatedSafetensors() throws IOException {
    Path dir = copy("tiny-llama");
    Path weights = dir.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 1000));
    rejects(dir, "model.safetensors", "overrun");
  }

  @Test
  void headerOffsetsThatOverrunTheFile() throws IOException {
    Path dir = copy("tiny-llama");
    Path weights = dir.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    // push the largest end offset far past the data section, keeping the header length
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"data_offsets\":\\[(\\d+),(\\d+)\\]").matcher(header);
    long maxEnd = 0;
    String last = null;
    while (m.find()) {
      if (Long.parseLong(m.group(2)) > maxEnd) {
        maxEnd = Long.parseLong(m.group(2));
        last = m.group();
      }
    }
    String broken = header.replace(last, last.replace(maxEnd + "]", (maxEnd + 4) + "]"));
    broken = broken.substring(0, (int) headerLength); // same length: the replaced digits may add one char at most
    if (broken.length() < headerLength) {
      broken = broken + " ".repeat((int) headerLength - broken.length());
    }
    byte[] out = bytes.clone();
    System.arraycopy(broken.getBytes(StandardCharsets.UTF_8), 0, out, 8, (int) headerLength);
    Files.write(weights, out);
    rejects(dir, "model.safetensors");
  }

  @Test
  void aDtypeWeDoNotReadAsWeights() throws IOException {
    Path dir = copy("tiny-llama");
    Path weights = dir.resolve("model.safetensors");
    var tensors = new java.util.HashMap<String, org.nd4j.linalg.api.ndarray.INDArray>();
    try (dev.peft4j.io.SafetensorsFile f = dev.peft4j.io.SafetensorsFile.open(weights)) {
      for (String n : f.names()) {
        tensors.put(n, f.read(n));
      }
    }
    tensors.put("model.norm.weight", tensors.get("model.norm.weight").castTo(org.nd4j.linalg.api.buffer.DataType.INT32));
    dev.peft4j.io.Safetensors.write(weights, tensors, java.util.Map.of("format", "pt"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HfModels.load(dir));
    assertTrue(e.getMessage().contains("model.norm.weight") && e.getMessage().contains("I32"), e.getMessage());
  }

  @Test
  void unsupportedModelTypeAndMissingFields() throws IOException {
    Path dir = copy("tiny-llama");
    Path config = dir.resolve("config.json");
    String json = Files.readString(config);
    Files.writeString(config, json.replace("\"model_type\": \"llama\"", "\"model_type\": \"bloom\""));
    rejects(dir, "config.json", "model_type 'bloom' is not supported", "roberta, xlm-roberta, distilbert, gpt2");
    Files.writeString(config, json.replace("\"num_key_value_heads\": 2,", "\"num_key_value_heads\": 3,"));
    rejects(dir, "config.json", "num_key_value_heads (3)");
    Files.writeString(config, json.replace("\"hidden_size\": 64,", ""));
    rejects(dir, "config.json", "missing field 'hidden_size'");
    Files.writeString(config, json.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""));
    rejects(dir, "hidden_act 'gelu' is not supported");
    Files.writeString(config, "{ not json");
    rejects(dir, "config.json", "not valid JSON");
  }

  @Test
  void robertaDistilBertGpt2AndGemmaRefuseWhatTheyDoNotBuild() throws IOException {
    Path gpt2 = copy("tiny-gpt2");
    Path config = gpt2.resolve("config.json");
    String json = Files.readString(config);
    Files.writeString(config, json.replace("\"activation_function\": \"gelu_new\"", "\"activation_function\": \"relu\""));
    rejects(gpt2, "activation_function 'relu' is not supported; only 'gelu_new'");
    Files.writeString(config, json.replace("\"scale_attn_by_inverse_layer_idx\": false",
        "\"scale_attn_by_inverse_layer_idx\": true"));
    rejects(gpt2, "scale_attn_by_inverse_layer_idx true is not supported");
    Files.writeString(config, json.replace("\"n_embd\": 32", "\"n_embd\": 30"));
    rejects(gpt2, "n_embd (30) must be a positive multiple of n_head (4)");

    Path roberta = copy("tiny-roberta");
    config = roberta.resolve("config.json");
    json = Files.readString(config);
    Files.writeString(config, json.replace("\"max_position_embeddings\": 66", "\"max_position_embeddings\": 2"));
    rejects(roberta, "max_position_embeddings (2) leaves no position after pad_token_id + 1 (2)");

    Path distil = copy("tiny-distilbert");
    config = distil.resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("\"activation\": \"gelu\"", "\"activation\": \"relu\""));
    rejects(distil, "activation 'relu' is not supported; only 'gelu'");

    Path gemma = copy("tiny-gemma");
    config = gemma.resolve("config.json");
    json = Files.readString(config);
    Files.writeString(config, json.replace("\"hidden_act\": \"gelu_pytorch_tanh\"", "\"hidden_act\": \"silu\""));
    rejects(gemma, "hidden_act 'silu' is not supported; only 'gelu_pytorch_tanh'");
    Files.writeString(config, json.replace("\"use_bidirectional_attention\": null",
        "\"use_bidirectional_attention\": true"));
    rejects(gemma, "use_bidirectional_attention true is not supported");
  }

  @Test
  void aShardListedInTheIndexButMissing() throws IOException {
    Path dir = copy("tiny-bert");
    Files.delete(dir.resolve("model-00002-of-00006.safetensors"));
    rejects(dir, "model-00002-of-00006.safetensors");
  }

  @Test
  void aTensorWithTheWrongShapeNamesBothShapes() throws IOException {
    Path dir = copy("tiny-llama");
    Path config = dir.resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("\"intermediate_size\": 128,",
        "\"intermediate_size\": 96,"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HfModels.load(dir));
    assertTrue(e.getMessage().contains("gate_proj.weight") && e.getMessage().contains("[64, 128]")
        && e.getMessage().contains("[64, 96]"), e.getMessage());
  }
}
