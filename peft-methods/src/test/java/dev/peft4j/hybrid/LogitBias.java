package dev.peft4j.hybrid;

import dev.peft4j.AbstractAdapter;
import dev.peft4j.Adapter;
import dev.peft4j.AdapterConfig;
import dev.peft4j.Targets;
import dev.peft4j.graph.GraphRewriter;
import dev.peft4j.graph.GraphRewriter.Created;
import dev.peft4j.graph.GraphRewriter.Splice;
import dev.peft4j.model.Mlp;
import java.util.List;
import java.util.Map;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A test-only method that is no module rewrite, as prompt tuning is not: a learned vector added to the graph's
 * {@code logits}, saved under the key {@code logit_bias} (no module prefix, as HF's {@code prompt_embeddings}). It
 * shows that any {@link AbstractAdapter} joins a hybrid.
 * <pre>
 *   logits' = logits + v      v: [classes], 0 at init
 * </pre>
 */
final class LogitBias extends AbstractAdapter<LogitBias.Config> {

  /** The config: nothing to choose. */
  record Config() implements AdapterConfig {
    @Override
    public String peftType() {
      return "TEST_LOGIT_BIAS";
    }

    @Override
    public Targets targets() {
      return Targets.names(Mlp.LOGITS);
    }

    @Override
    public long parameterCount(SameDiff sameDiff) {
      return sameDiff.getVariable(Mlp.LABELS).getShape()[1];
    }

    @Override
    public Map<String, Object> toHfConfig() {
      return Map.of("peft_type", peftType());
    }

    @Override
    public Adapter newAdapter(String adapterName) {
      return new LogitBias(adapterName, this);
    }
  }

  private String vector;
  private Created created;
  private Splice splice;

  private LogitBias(String name, Config config) {
    super(name, config);
  }

  @Override
  protected void build(SameDiff sd, GraphRewriter g) {
    long classes = sd.getVariable(Mlp.LABELS).getShape()[1];
    String scope = scope("logit_bias");
    String[] sum = new String[1];
    created = g.capture(() -> {
      vector = sd.var(scope + "v", Nd4j.zeros(sd.getVariable(Mlp.LOGITS).dataType(), classes)).name();
      sum[0] = sd.getVariable(Mlp.LOGITS).add(scope + "base_logits", sd.getVariable(vector)).name();
    });
    splice = g.splice(Mlp.LOGITS, sum[0], created.ops());
  }

  @Override
  protected void attach() {
    graph().resplice(splice);
  }

  @Override
  protected void detach() {
    if (splice != null) {
      graph().unsplice(splice);
    }
  }

  @Override
  protected void remove() {
    if (created != null) {
      graph().remove(created);
    }
  }

  @Override
  protected List<String> parameters() {
    return List.of(vector);
  }

  @Override
  protected Map<String, INDArray> ownStateDict() {
    return Map.of("logit_bias", sd().getArrForVarName(vector).dup());
  }

  @Override
  protected void loadOwnStateDict(Map<String, INDArray> tensors) {
    sd().getArrForVarName(vector).assign(tensors.get("logit_bias"));
  }
}
