package dev.peft4j.prompt;

import static com.google.common.base.Preconditions.checkArgument;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.model.Hooks;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Prompt tuning: a trained table of n virtual-token embeddings prepended to the input embeddings. See the package
 * documentation for the math.
 * <pre>
 *   P: [n, H]   at peft/&lt;adapter&gt;/prompt_tuning/prompt_embeddings      saved as prompt_embeddings [n, H]
 * </pre>
 * Not mergeable (there is no weight to fold the prompt into), and not the identity at init: the model reads n more
 * tokens.
 */
public final class PromptTuning extends AbstractAdapter<PromptTuningConfig> {

  /** Hugging Face PEFT's key of the virtual-token table. */
  public static final String KEY = "prompt_embeddings";

  private VirtualTokens tokens;

  PromptTuning(String name, PromptTuningConfig config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sameDiff, GraphRewriter g) {
    Hooks.Dims dims = config().check(sameDiff);
    INDArray initial = initialPrompt(sameDiff, dims.hidden());
    String scope = scope("prompt_tuning");
    tokens = VirtualTokens.prepend(sameDiff, g, scope, config().numVirtualTokens(),
        () -> sameDiff.var(scope + KEY, initial));
  }

  /** The initial table, {@code [n, H]} in the word embeddings' type. */
  private INDArray initialPrompt(SameDiff sd, int hidden) {
    PromptTuningConfig c = config();
    int n = c.numVirtualTokens();
    INDArray table = sd.getArrForVarName(VirtualTokens.tableOf(sd));                    // [V, H]
    DataType type = table.dataType();
    if (c.inferenceMode()) {
      return Nd4j.zeros(type, n, hidden); // the saved prompt is loaded next, as HF skips the init in inference mode
    }
    Random random = new Random(c.seed());
    long vocab = table.size(0);
    return switch (c.init()) {
      case RANDOM -> {
        double[] values = new double[n * hidden];
        for (int i = 0; i < values.length; i++) {
          values[i] = random.nextGaussian();
        }
        yield Nd4j.create(values, new long[] {n, hidden}, DataType.DOUBLE).castTo(type);
      }
      case SAMPLE_VOCAB -> rows(table, random.longs(n, 0, vocab).toArray());
      case TEXT -> {
        long[] text = c.initTokenIds();
        for (long id : text) {
          checkArgument(id >= 0 && id < vocab, "init text token id %s is outside the vocabulary of %s", id, vocab);
        }
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
          ids[i] = text[i % text.length]; // repeated until there are n, as HF does
        }
        yield rows(table, ids);
      }
    };
  }

  private static INDArray rows(INDArray table, long[] ids) {
    INDArray out = Nd4j.create(table.dataType(), ids.length, table.size(1));
    for (int i = 0; i < ids.length; i++) {
      out.putRow(i, table.getRow(ids[i]));
    }
    return out;
  }

  @Override
  protected void attach() {
    tokens.attach();
  }

  @Override
  protected void detach() {
    if (tokens != null) {
      tokens.detach();
    }
  }

  @Override
  protected void remove() {
    if (tokens != null) {
      tokens.remove();
      tokens = null;
    }
  }

  @Override
  protected List<String> parameters() {
    return List.of(tokens.prompt());
  }

  @Override
  protected Map<String, INDArray> ownStateDict() {
    return Map.of(KEY, sd().getArrForVarName(tokens.prompt()).dup());
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    INDArray p = sd().getArrForVarName(tokens.prompt());
    p.assign(tensors.get(KEY).castTo(p.dataType()));
  }
}
