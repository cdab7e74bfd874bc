package dev.peft4j.generate;

import dev.peft4j.graph.RowMajorArrayCache;
import dev.peft4j.model.Llama;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ObjIntConsumer;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * One batch's generation loop over {@link DecoderGraphs}: left padding, prefill, then one decode step per token with
 * the cache (or, uncached, the prefill graph over the whole sequence at every step).
 * <pre>
 *   tokens   [b, s + generated]   pads, prompt, generated ids (what the repetition penalty reads)
 *   mask     [b, P + generated]   the attention mask over every cache position: 1 for virtual tokens, 0 on pads
 *   cache    per layer key, value [b, nkv, P + generated − 1, d] before a step (P: prompt tuning's virtual tokens + s)
 * </pre>
 */
final class Decoding {

  private final DecoderGraphs graphs;
  private final boolean cached;
  private final GenerationConfig config;
  private final NextTokens next;

  Decoding(DecoderGraphs graphs, boolean cached, GenerationConfig config) {
    this.graphs = graphs;
    this.cached = cached;
    this.config = config;
    this.next = new NextTokens(config);
  }

  List<long[]> run(List<long[]> prompts, ObjIntConsumer<INDArray> stepLogits) {
    int b = prompts.size();
    int s = prompts.stream().mapToInt(p -> p.length).max().orElseThrow();
    int max = config.maxNewTokens();
    long[][] tokens = new long[b][s + max];
    long[][] mask = new long[b][s + max];
    for (int r = 0; r < b; r++) {
      long[] p = prompts.get(r);
      int pads = s - p.length;
      for (int j = 0; j < s; j++) {
        tokens[r][j] = j < pads ? config.padTokenId() : p[j - pads];
        mask[r][j] = j < pads ? 0 : 1;
      }
    }
    List<List<Long>> generated = new ArrayList<>();
    for (int r = 0; r < b; r++) {
      generated.add(new ArrayList<>());
    }
    boolean[] finished = new boolean[b];
    Map<String, INDArray> cache = new HashMap<>();
    INDArray virtualOnes = null; // [b, n]: the virtual tokens' part of the mask
    for (int step = 0; step < max; step++) {
      int length = s + step;
      INDArray logits;
      if (step == 0 || !cached) {
        Map<String, INDArray> out = run(graphs.prefill, Map.of(Llama.INPUT_IDS, slice(tokens, 0, length),
            Llama.ATTENTION_MASK, slice(mask, 0, length)), cached);
        logits = last(out.get(Llama.LOGITS));
        if (cached) {
          cache = out;
          long n = out.get(graphs.keys.get(0)).size(2) - length;
          virtualOnes = Nd4j.ones(DataType.INT64, b, n);
        }
      } else {
        Map<String, INDArray> in = new HashMap<>();
        in.put(Llama.INPUT_IDS, slice(tokens, length - 1, length));
        INDArray realMask = slice(mask, 0, length);
        in.put(Llama.ATTENTION_MASK, virtualOnes.size(1) == 0 ? realMask : Nd4j.concat(1, virtualOnes, realMask));
        for (int i = 0; i < graphs.keys.size(); i++) {
          in.put(graphs.pastKeys.get(i), cache.get(graphs.keys.get(i)));
          in.put(graphs.pastValues.get(i), cache.get(graphs.values.get(i)));
        }
        cache = run(graphs.decode, in, true);
        logits = last(cache.get(Llama.LOGITS));
      }
      if (stepLogits != null) {
        stepLogits.accept(logits, step);
      }
      float[][] rows = logits.toFloatMatrix();
      boolean all = true;
      for (int r = 0; r < b; r++) {
        long id = finished[r] ? config.padTokenId() : next.choose(rows[r], Arrays.copyOf(tokens[r], length));
        tokens[r][length] = id;
        mask[r][length] = 1;
        if (!finished[r]) {
          generated.get(r).add(id);
          finished[r] = config.eosTokenIds().contains(id);
        }
        all &= finished[r];
      }
      if (all) {
        break;
      }
    }
    return generated.stream().map(g -> g.stream().mapToLong(Long::longValue).toArray()).toList();
  }

  private Map<String, INDArray> run(SameDiff sd, Map<String, INDArray> inputs, boolean withCache) {
    List<String> outputs = new ArrayList<>();
    outputs.add(Llama.LOGITS);
    if (withCache) {
      outputs.addAll(graphs.keys);
      outputs.addAll(graphs.values);
    }
    RowMajorArrayCache.install(sd);
    return sd.output(inputs, outputs.toArray(new String[0]));
  }

  /** Columns [from, to) of a token matrix as an INT64 array [b, to − from]. */
  private static INDArray slice(long[][] m, int from, int to) {
    long[][] part = new long[m.length][];
    for (int r = 0; r < m.length; r++) {
      part[r] = Arrays.copyOfRange(m[r], from, to);
    }
    return Nd4j.createFromArray(part);
  }

  /** The last position's logits: [b, s, V] (s = 1 but under prompt tuning) → [b, V]. */
  private static INDArray last(INDArray logits) {
    return logits.get(NDArrayIndex.all(), NDArrayIndex.point(logits.size(1) - 1), NDArrayIndex.all()).dup();
  }
}
