package dev.peft4j.generate;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * How {@link Generator} picks tokens, with transformers' {@code GenerationConfig} names and defaults.
 * <pre>
 *   greedy:   next = argmax(penalised logits)
 *   sampling: next ~ softmax(top_p(top_k(penalised logits / temperature)))
 *   penalty (repetition_penalty p, HF's CTRL rule): for every token already in the row (prompt and pads included),
 *             logit < 0 ? logit·p : logit/p
 * </pre>
 *
 * @param maxNewTokens tokens to generate per row at most (HF {@code max_new_tokens}); &gt; 0
 * @param doSample sample instead of taking the most likely token (HF {@code do_sample})
 * @param temperature divides the logits when sampling; &gt; 0 when sampling (default 1)
 * @param topK keep the k most likely tokens when sampling, 0 = all (HF's default 50)
 * @param topP keep the smallest set of most likely tokens whose probability reaches p when sampling; in (0, 1]
 * @param repetitionPenalty 1 = none; &gt; 0
 * @param eosTokenIds a row stops after generating one of these (empty: it runs to {@code maxNewTokens})
 * @param padTokenId the id left padding fills with (only the repetition penalty sees it: pads are masked)
 * @param seed the sampling random generator's seed (same seed and inputs → same tokens)
 */
public record GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
    double repetitionPenalty, List<Long> eosTokenIds, long padTokenId, long seed) {

  /** HF's default {@code top_k}. */
  public static final int DEFAULT_TOP_K = 50;

  /**
   * @throws IllegalArgumentException naming the value, if {@code maxNewTokens} ≤ 0, {@code topP} is outside (0, 1],
   *     {@code temperature} ≤ 0 (or not finite) when sampling, {@code topK} &lt; 0 or {@code repetitionPenalty} ≤ 0
   */
  public GenerationConfig {
    checkArgument(maxNewTokens > 0, "max_new_tokens must be > 0, got %s", maxNewTokens);
    checkArgument(topP > 0 && topP <= 1, "top_p must be in (0, 1], got %s", topP);
    checkArgument(!doSample || temperature > 0 && Double.isFinite(temperature),
        "temperature must be > 0 and finite when sampling, got %s", temperature);
    checkArgument(topK >= 0, "top_k must be >= 0 (0 keeps every token), got %s", topK);
    checkArgument(repetitionPenalty > 0 && Double.isFinite(repetitionPenalty),
        "repetition_penalty must be > 0 (1 = none), got %s", repetitionPenalty);
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  /** Greedy decoding of up to {@code maxNewTokens} tokens, no EOS, pads 0. */
  public static GenerationConfig greedy(int maxNewTokens) {
    return new GenerationConfig(maxNewTokens, false, 1.0, DEFAULT_TOP_K, 1.0, 1.0, List.of(), 0, 0);
  }

  /** Sampling with HF's defaults (temperature 1, top-k 50, top-p 1) from {@code seed}. */
  public static GenerationConfig sampling(int maxNewTokens, long seed) {
    return new GenerationConfig(maxNewTokens, true, 1.0, DEFAULT_TOP_K, 1.0, 1.0, List.of(), 0, seed);
  }

  /**
   * Greedy (or sampling, if the file says {@code do_sample}) with the checkpoint's {@code generation_config.json}:
   * {@code eos_token_id} (a number or a list), {@code pad_token_id}, {@code do_sample}, {@code temperature},
   * {@code top_k}, {@code top_p}, {@code repetition_penalty}; EOS and pad fall back to {@code config.json}'s, the pad to
   * the first EOS (as transformers does), then 0.
   *
   * @throws IOException if a file exists but cannot be read
   */
  public static GenerationConfig fromCheckpoint(Path dir, int maxNewTokens) throws IOException {
    JsonObject gen = read(dir.resolve("generation_config.json"));
    JsonObject cfg = read(dir.resolve("config.json"));
    List<Long> eos = ids(gen.has("eos_token_id") ? gen.get("eos_token_id") : cfg.get("eos_token_id"));
    List<Long> pad = ids(gen.has("pad_token_id") ? gen.get("pad_token_id") : cfg.get("pad_token_id"));
    return new GenerationConfig(maxNewTokens, bool(gen, "do_sample", false), number(gen, "temperature", 1.0),
        (int) number(gen, "top_k", DEFAULT_TOP_K), number(gen, "top_p", 1.0), number(gen, "repetition_penalty", 1.0),
        eos, !pad.isEmpty() ? pad.get(0) : !eos.isEmpty() ? eos.get(0) : 0, 0);
  }

  public GenerationConfig withSampling(boolean sample) {
    return new GenerationConfig(maxNewTokens, sample, temperature, topK, topP, repetitionPenalty, eosTokenIds,
        padTokenId, seed);
  }

  public GenerationConfig withMaxNewTokens(int n) {
    return new GenerationConfig(n, doSample, temperature, topK, topP, repetitionPenalty, eosTokenIds, padTokenId,
        seed);
  }

  public GenerationConfig withTemperature(double t) {
    return new GenerationConfig(maxNewTokens, doSample, t, topK, topP, repetitionPenalty, eosTokenIds, padTokenId,
        seed);
  }

  public GenerationConfig withTopK(int k) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, k, topP, repetitionPenalty, eosTokenIds,
        padTokenId, seed);
  }

  public GenerationConfig withTopP(double p) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, topK, p, repetitionPenalty, eosTokenIds,
        padTokenId, seed);
  }

  public GenerationConfig withRepetitionPenalty(double p) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, p, eosTokenIds, padTokenId, seed);
  }

  public GenerationConfig withEosTokenIds(List<Long> ids) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, ids, padTokenId,
        seed);
  }

  public GenerationConfig withPadTokenId(long id) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, eosTokenIds, id,
        seed);
  }

  public GenerationConfig withSeed(long s) {
    return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, repetitionPenalty, eosTokenIds,
        padTokenId, s);
  }

  private static JsonObject read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      return new JsonObject();
    }
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      JsonElement e = JsonParser.parseReader(r);
      checkArgument(e.isJsonObject(), "%s is not a JSON object", file);
      return e.getAsJsonObject();
    }
  }

  private static List<Long> ids(JsonElement e) {
    List<Long> out = new ArrayList<>();
    if (e == null || e.isJsonNull()) {
      return out;
    }
    if (e.isJsonArray()) {
      e.getAsJsonArray().forEach(x -> out.add(x.getAsLong()));
    } else {
      out.add(e.getAsLong());
    }
    return out;
  }

  private static double number(JsonObject o, String key, double fallback) {
    return o.has(key) && !o.get(key).isJsonNull() ? o.get(key).getAsDouble() : fallback;
  }

  private static boolean bool(JsonObject o, String key, boolean fallback) {
    return o.has(key) && !o.get(key).isJsonNull() ? o.get(key).getAsBoolean() : fallback;
  }
}
