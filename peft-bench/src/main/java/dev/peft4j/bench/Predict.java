package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.AdapterConfig;
import dev.peft4j.PeftModel;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.Heads;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.quant.QuantizedBase;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVPrinter;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Applies a trained classification adapter, as {@link Compare} saves it (any method: the adapter in Hugging Face
 * PEFT's format with its head, and {@value #LABELS_FILE}), with its base model to new texts: one text per line of a
 * UTF-8 file or of standard input (blank lines skipped), in batches, printing each text's line, predicted label and
 * class probabilities as CSV or JSON Lines, with progress on standard error.
 *
 * <pre>{@code
 * predict --adapter compare-results/adapters/lora --input emails.txt --format jsonl
 * }</pre>
 */
public final class Predict {

  /** The file beside a compare adapter naming its method, labels, sequence length and base model. */
  public static final String LABELS_FILE = "peft4j-task.json";

  /** What a saved adapter was trained for. */
  record Task(String method, List<String> labels, int seqLength, Path model) {}

  /** Output formats. */
  enum Format { CSV, JSONL }

  /** The command line. */
  @CommandLine.Command(name = "predict", mixinStandardHelpOptions = true, sortOptions = false,
      description = "Label texts with a classification adapter that compare saved.")
  static final class Command implements Callable<Integer> {
    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "an adapter directory as compare "
        + "saves it (adapters/<method>)")
    Path adapter;
    @Mixin
    ModelOptions model = new ModelOptions();
    @Option(names = "--seq", paramLabel = "N", description = "tokens per text (default: the adapter's training "
        + "length)")
    Integer seq;
    @Option(names = "--input", paramLabel = "FILE", defaultValue = "-", description = "UTF-8 text, one text per line; "
        + "- for standard input (default)")
    String input;
    @Option(names = "--format", paramLabel = "csv|jsonl", defaultValue = "csv", description = "output format: "
        + "${COMPLETION-CANDIDATES} (default ${DEFAULT-VALUE})", converter = FormatConverter.class)
    Format format;
    @Option(names = "--batch", paramLabel = "N", defaultValue = "32", description = "texts per forward pass (default "
        + "${DEFAULT-VALUE})")
    int batch;

    @Override
    public Integer call() throws IOException {
      try {
        run(adapter, model.model, seq, input, format, batch, System.in, System.out, System.err);
        return 0;
      } catch (IllegalArgumentException e) {
        System.err.println("predict: " + e.getMessage());
        return 2;
      }
    }
  }

  static final class FormatConverter extends LowerCaseEnum<Format> {
    FormatConverter() {
      super(Format.class, "format");
    }
  }

  private Predict() {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new Command()).execute(args));
  }

  /**
   * Labels the texts of {@code input} ({@code -}: {@code stdin}) and prints one row per text to {@code out}.
   * Everything is validated before the model is loaded.
   *
   * @param model the base model directory; null for the adapter's own (as recorded by compare)
   * @param seq   tokens per text; null for the adapter's training length
   * @throws IllegalArgumentException naming a missing adapter, a bad input file or encoding, or a bad option
   */
  static void run(Path adapter, Path model, Integer seq, String input, Format format, int batch, InputStream stdin,
      PrintStream out, PrintStream progress) throws IOException {
    checkArgument(batch > 0, "--batch must be > 0, got %s", batch);
    Task task = readTask(adapter);
    Path base = model != null ? model : task.model();
    int seqLength = seq != null ? seq : task.seqLength();
    ModelOptions.checkSequenceLength(base, seqLength);
    String source = input.equals("-") ? "standard input" : input;
    String text = input.equals("-") ? TextClassificationData.utf8(stdin.readAllBytes(), source)
        : TextClassificationData.utf8(Path.of(input));
    List<Integer> lines = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    String[] all = text.split("\r?\n", -1);
    for (int i = 0; i < all.length; i++) {
      if (!all[i].isBlank()) {
        lines.add(i + 1);
        texts.add(all[i]);
      }
    }
    checkArgument(!texts.isEmpty(), "%s: no texts (one per line expected)", source);

    PeftModel peft = load(adapter, task, base, seqLength);
    CSVPrinter csv = null;
    if (format == Format.CSV) {
      List<String> header = new ArrayList<>(List.of("line", "label"));
      task.labels().forEach(l -> header.add("p_" + l));
      csv = new CSVPrinter(out, CSVFormat.RFC4180.builder().setRecordSeparator("\n").get());
      csv.printRecord(header);
    }
    long start = System.nanoTime();
    Long pad = Compare.decoderPad(base);
    try (Tokenizer tokenizer = Compare.tokenizer(base, seqLength)) {
      for (int from = 0; from < texts.size(); from += batch) {
        int to = Math.min(texts.size(), from + batch);
        Tokenizer.Encoded encoded = tokenizer.encode(texts.subList(from, to));
        INDArray p = peft.output(Compare.inputs(encoded, pad), Heads.PROBABILITIES).get(Heads.PROBABILITIES); // [b, labels]
        for (int i = 0; i < p.rows(); i++) {
          double[] row = p.getRow(i).toDoubleVector();
          int best = 0;
          for (int c = 1; c < row.length; c++) {
            best = row[c] > row[best] ? c : best;
          }
          if (csv != null) {
            List<Object> record = new ArrayList<>(List.of(lines.get(from + i), task.labels().get(best)));
            for (double v : row) {
              record.add(String.format(Locale.ROOT, "%.6f", v));
            }
            csv.printRecord(record);
          } else {
            JsonObject o = new JsonObject();
            o.addProperty("line", lines.get(from + i));
            o.addProperty("label", task.labels().get(best));
            JsonObject probabilities = new JsonObject();
            for (int c = 0; c < row.length; c++) {
              probabilities.addProperty(task.labels().get(c), Math.round(row[c] * 1e6) / 1e6);
            }
            o.add("probabilities", probabilities);
            out.println(o);
          }
        }
        if (csv != null) {
          csv.flush();
        }
        out.flush();
        double seconds = (System.nanoTime() - start) / 1e9;
        progress.printf(Locale.ROOT, "predict: %d/%d texts, %.1f s, %.1f texts/s%n", to, texts.size(), seconds,
            to / seconds);
      }
    }
  }

  /** The base model with its head and the adapter loaded (a QLoRA adapter onto the base quantised as it trained). */
  static PeftModel load(Path adapter, Task task, Path base, int seqLength) throws IOException {
    SameDiff sd = Compare.classifier(base, seqLength, task.labels().size(), 0); // the head's weights are loaded
    AdapterConfig trained = CompareMethods.named(List.of(task.method())).get(0).config(0, 1,
        ModelOptions.family(base));
    if (trained instanceof LoraConfig lora && lora.quantizeBase().isPresent()) {
      QuantizedBase.quantize(sd, lora.quantizeBase().get());
    }
    return Peft.load(sd, adapter);
  }

  /** Writes {@value #LABELS_FILE} into a compare adapter's directory. */
  static void writeLabels(Path adapter, String method, List<String> labels, int seqLength, Path model)
      throws IOException {
    JsonObject o = new JsonObject();
    o.addProperty("method", method);
    JsonArray names = new JsonArray();
    labels.forEach(names::add);
    o.add("labels", names);
    o.addProperty("seq", seqLength);
    o.addProperty("model", model == null ? null : model.toAbsolutePath().toString());
    Files.writeString(adapter.resolve(LABELS_FILE), CompareTrial.GSON.toJson(o), StandardCharsets.UTF_8);
  }

  static Task readTask(Path adapter) throws IOException {
    checkArgument(Files.isDirectory(adapter), "--adapter %s: not found (an adapter directory as compare saves it is "
        + "expected)", adapter);
    Path file = adapter.resolve(LABELS_FILE);
    checkArgument(Files.isRegularFile(file), "--adapter %s: no %s; predict needs an adapter saved by compare (its "
        + "labels and method are recorded there)", adapter, LABELS_FILE);
    JsonObject o = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
    List<String> labels = new ArrayList<>();
    o.getAsJsonArray("labels").forEach(e -> labels.add(e.getAsString()));
    JsonElement model = o.get("model");
    return new Task(o.get("method").getAsString(), labels, o.get("seq").getAsInt(),
        model == null || model.isJsonNull() ? null : Path.of(model.getAsString()));
  }
}
