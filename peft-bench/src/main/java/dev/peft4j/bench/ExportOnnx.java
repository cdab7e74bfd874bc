package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.model.OnnxExport;
import dev.peft4j.model.PretrainedModels;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.nd4j.autodiff.samediff.SameDiff;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * Merges a classification adapter that {@link Compare} trained on the bundled all-MiniLM-L6-v2 into the model and
 * writes the model's ONNX file again with the merged weights ({@link OnnxExport}), for onnxruntime or langchain4j's
 * embedding models to serve. The ONNX graph is the encoder's ({@code last_hidden_state}): the trained classification
 * head has no place in it and is left out, which the command says.
 *
 * <pre>{@code
 * export-onnx --adapter compare-results/adapters/lora --out minilm-tuned.onnx
 * }</pre>
 */
public final class ExportOnnx {

  /** The command line. */
  @CommandLine.Command(name = "export-onnx", mixinStandardHelpOptions = true, sortOptions = false,
      description = "Write the bundled MiniLM's ONNX file with a compare adapter merged into its weights.")
  static final class Command implements Callable<Integer> {
    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "an adapter directory as compare "
        + "saves it (adapters/<method>), trained on the bundled MiniLM with a mergeable method")
    Path adapter;
    @Option(names = "--out", required = true, paramLabel = "FILE", description = "the ONNX file to write (replaced "
        + "atomically if it exists)")
    Path out;

    @Override
    public Integer call() throws IOException {
      try {
        run(adapter, out, System.err);
        return 0;
      } catch (IllegalArgumentException | IllegalStateException e) {
        System.err.println("export-onnx: " + e.getMessage());
        return 2;
      }
    }
  }

  private ExportOnnx() {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new Command()).execute(args));
  }

  /**
   * Writes {@code out}; everything is validated before the model is loaded.
   *
   * @throws IllegalArgumentException naming a missing adapter, one trained on another base model, or a missing
   *                                  directory of {@code out}
   * @throws IllegalStateException    if the adapter's method cannot be merged (a bottleneck adapter, say)
   */
  static OnnxExport.Result run(Path adapter, Path out, PrintStream progress) throws IOException {
    Predict.Task task = Predict.readTask(adapter);
    checkArgument(task.model() == null, "--adapter %s was trained on %s; export-onnx writes into the bundled "
        + "all-MiniLM-L6-v2's ONNX file, so it needs an adapter trained on the bundled model", adapter, task.model());
    Path directory = out.toAbsolutePath().getParent();
    checkArgument(directory != null && Files.isDirectory(directory), "--out %s: directory %s does not exist", out,
        directory);
    SameDiff merged = Predict.load(adapter, task, null, task.seqLength()).mergeAndUnload();
    OnnxExport.Result result;
    try (InputStream base = PretrainedModels.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
      result = OnnxExport.writeMerged(merged, base, "all-minilm-l6-v2.onnx", out);
    }
    progress.printf("export-onnx: %s written: %d initializers from the merged model, %d copied; not in the ONNX "
        + "graph, left out: %s%n", out, result.replaced().size(), result.copied().size(), result.notExported());
    return result;
  }
}
