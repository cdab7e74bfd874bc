package dev.peft4j.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** A tiny BERT checkpoint directory (peft-core's fixture, 2 layers, hidden 32) and a word-sentiment CSV for it. */
final class TinyTask {

  static final String[] GOOD = {"good", "great", "fine", "love", "nice", "happy"};
  static final String[] BAD = {"bad", "awful", "poor", "hate", "sad", "terrible"};

  private TinyTask() {}

  /** The checkpoint with a WordLevel tokenizer of the CSV's words, copied into {@code dir/tiny-bert}. */
  static Path model(Path dir) throws IOException {
    Path model = Files.createDirectories(dir.resolve("tiny-bert"));
    try (var files = Files.list(Path.of("../peft-core/src/test/resources/fixtures/tiny-bert"))) {
      for (Path f : files.filter(f -> !f.getFileName().toString().equals("golden.safetensors")).toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    try (InputStream in = TinyTask.class.getResourceAsStream("/tiny-bert-tokenizer.json")) {
      Files.copy(in, model.resolve("tokenizer.json"));
    }
    return model;
  }

  /** {@code rows} sentences alternating pos / neg, header {@code sentence,y}, no split column. */
  static Path csv(Path dir, int rows) throws IOException {
    StringBuilder csv = new StringBuilder("sentence,y\n");
    for (int i = 0; i < rows; i++) {
      csv.append(sentence(i)).append(',').append(i % 2 == 0 ? "pos" : "neg").append('\n');
    }
    return Files.writeString(dir.resolve("words.csv"), csv);
  }

  /** Row {@code i}'s text, quoted for CSV (it holds a comma). */
  static String sentence(int i) {
    String word = (i % 2 == 0 ? GOOD : BAD)[i % 6];
    return String.format("\"the %s was very %s, %s\"", i % 3 == 0 ? "movie" : "food", word, word);
  }
}
