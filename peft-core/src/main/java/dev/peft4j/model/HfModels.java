package dev.peft4j.model;

import dev.peft4j.BackendCheck;
import dev.peft4j.TaskType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Loads a Hugging Face checkpoint directory ({@code config.json} plus safetensors, and {@code tokenizer.json} when
 * present) as a peft4j graph, offline; the bare architecture, or the task model {@code config.json}'s
 * {@code architectures} names (Hugging Face's {@code AutoModelFor…}).
 *
 * <pre>{@code
 * HfModels.Decoder qwen = HfModels.loadDecoder(Path.of("Qwen3-0.6B"));        // qwen.config() is a LlamaConfig
 * PeftModel peft = Peft.lora(16).target("q_proj", "v_proj").apply(qwen.sameDiff());
 *
 * HfModels.Loaded classifier = HfModels.loadTask(Path.of("bert-sst2"));       // BertForSequenceClassification
 * }</pre>
 * Every model loaded here is remembered with its name ({@code config.json}'s {@code _name_or_path}, else the
 * directory as given) and its task, so that an adapter saved on it carries {@code base_model_name_or_path} and
 * {@code task_type} as Hugging Face PEFT writes them ({@link ModelOrigin}).
 */
public final class HfModels {

  /** {@code architectures} entries {@link #loadTask} builds a head for. */
  public static final List<String> TASK_ARCHITECTURES = List.of("BertForSequenceClassification",
      "BertForTokenClassification", "LlamaForSequenceClassification", "MistralForSequenceClassification",
      "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification", "GemmaForSequenceClassification",
      "RobertaForSequenceClassification",
      "XLMRobertaForSequenceClassification");
  /** {@code architectures} entries {@link #loadTask} builds the bare (or causal-LM) graph for. */
  public static final List<String> BASE_ARCHITECTURES = List.of("BertModel", "LlamaForCausalLM",
      "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "GemmaForCausalLM", "RobertaModel",
      "XLMRobertaModel", "DistilBertModel", "GPT2Model", "GPT2LMHeadModel");

  private HfModels() {}

  /**
   * A loaded model: {@link Encoder}, {@link Decoder} or {@link OtherModel}, so that {@code config()} is typed after a
   * pattern match.
   */
  public sealed interface Loaded permits Encoder, Decoder, OtherModel {

    /** The graph. */
    SameDiff sameDiff();

    /** {@link BertConfig}, {@link LlamaConfig}, {@link RobertaConfig}, {@link DistilBertConfig} or {@link Gpt2Config}. */
    Record config();

    /** Checkpoint tensors the graph did not use (as transformers warns about them), sorted. */
    Set<String> unusedTensors();

    /** The checkpoint's {@code tokenizer.json}, truncating at the model's positions, when the directory has one. */
    Optional<Tokenizer> tokenizer();

    /** {@code config.json}'s {@code _name_or_path}, else the directory as given. */
    String nameOrPath();

    /** The task of the graph's head ({@link TaskType#FEATURE_EXTRACTION} for a bare encoder). */
    TaskType taskType();
  }

  /**
   * A BERT graph: {@link Bert#encoder} (with its pooler when the checkpoint has one), or a task model of
   * {@link Heads}.
   */
  public record Encoder(SameDiff sameDiff, BertConfig config, Set<String> unusedTensors,
      Optional<Tokenizer> tokenizer, String nameOrPath, TaskType taskType) implements Loaded {}

  /** A Llama-family graph: {@link Llama#causalLm}, or {@link Heads#llamaForSequenceClassification}. */
  public record Decoder(SameDiff sameDiff, LlamaConfig config, Set<String> unusedTensors,
      Optional<Tokenizer> tokenizer, String nameOrPath, TaskType taskType) implements Loaded {}

  /**
   * A RoBERTa / XLM-RoBERTa graph ({@link Roberta#encoder}, with its classification head when {@code config.json}'s
   * {@code architectures} names a {@code …ForSequenceClassification}), DistilBERT ({@link DistilBert#encoder}) or
   * GPT-2 ({@link Gpt2#causalLm}); {@code config()} is a {@link RobertaConfig}, {@link DistilBertConfig} or
   * {@link Gpt2Config}.
   */
  public record OtherModel(SameDiff sameDiff, Record config, Set<String> unusedTensors,
      Optional<Tokenizer> tokenizer, String nameOrPath, TaskType taskType) implements Loaded {}

  /**
   * The bare architecture of {@code model_type}: {@link Bert#encoder} for {@code bert}, {@link Llama#causalLm} for
   * llama, mistral, qwen2, qwen3, gemma, {@link Roberta#encoder} for roberta and xlm-roberta (with the classification
   * head when {@code architectures} names a {@code …ForSequenceClassification}), {@link DistilBert#encoder} for
   * distilbert, {@link Gpt2#causalLm} for gpt2.
   *
   * @throws IOException naming the file and the problem (missing files, unsupported model_type, missing config
   *     fields, corrupt safetensors); no graph is returned then
   * @throws IllegalArgumentException naming the tensor, if a tensor the architecture needs is missing or misshapen
   * @throws IllegalStateException naming the ND4J backend artifacts to add, if none is on the classpath
   *     ({@link BackendCheck})
   */
  public static Loaded load(Path dir) throws IOException {
    return build(dir, null, 0);
  }

  /** {@link #load}, refusing a checkpoint that is not BERT; {@code config()} is a {@link BertConfig}. */
  public static Encoder loadEncoder(Path dir) throws IOException {
    requireModelType(dir, ENCODER_TYPES, "an encoder");
    return (Encoder) load(dir);
  }

  /** {@link #load}, refusing a checkpoint that is not a decoder; {@code config()} is a {@link LlamaConfig}. */
  public static Decoder loadDecoder(Path dir) throws IOException {
    requireModelType(dir, DECODER_TYPES, "a decoder");
    return (Decoder) load(dir);
  }

  private static final List<String> ENCODER_TYPES = List.of("bert");
  private static final List<String> DECODER_TYPES = List.of("llama", "mistral", "qwen2", "qwen3", "gemma");

  /**
   * Refuses a checkpoint of another kind from its {@code config.json} alone, before any weight is read; without a
   * {@code config.json}, {@link #load} says so.
   */
  private static void requireModelType(Path dir, List<String> types, String kind) throws IOException {
    Path configJson = dir.resolve("config.json");
    if (Files.isRegularFile(configJson)) {
      String type = JsonConfig.read(configJson).modelType();
      if (!types.contains(type)) {
        throw new IOException(String.format("%s: model_type '%s' is not %s; supported: %s", configJson, type, kind,
            String.join(", ", types)));
      }
    }
  }

  /**
   * The model {@code config.json}'s first {@code architectures} entry names, as {@code AutoModelFor…} builds it: a
   * task head from {@link #TASK_ARCHITECTURES} with the checkpoint's weights and {@code id2label}'s label count
   * (a head the checkpoint lacks starts as transformers initialises it), or the graph of {@link #load} for an entry
   * of {@link #BASE_ARCHITECTURES}.
   *
   * @throws IOException as {@link #load}, or naming the entry and listing the supported ones, if
   *     {@code architectures} is missing or names a model peft4j does not build
   */
  public static Loaded loadTask(Path dir) throws IOException {
    JsonConfig json = JsonConfig.read(dir.resolve("config.json"));
    List<String> architectures = json.strings("architectures");
    String architecture = architectures.isEmpty() ? "(none)" : architectures.get(0);
    int labels = json.isObject("id2label") ? json.size("id2label") : 2;
    return build(dir, architecture, labels);
  }

  /**
   * The task model {@code architecture} (one of {@link #TASK_ARCHITECTURES} or {@link #BASE_ARCHITECTURES}) on the
   * checkpoint in {@code dir}, with {@code numLabels} labels: Hugging Face's
   * {@code AutoModelForSequenceClassification.from_pretrained(dir, num_labels=numLabels)} on a base checkpoint.
   *
   * @throws IOException as {@link #loadTask}
   * @throws IllegalArgumentException naming both counts, if the checkpoint's head has another label count
   */
  public static Loaded load(Path dir, String architecture, int numLabels) throws IOException {
    return build(dir, architecture, numLabels);
  }

  private static Loaded build(Path dir, String architecture, int numLabels) throws IOException {
    BackendCheck.requireBackend();
    Path configJson = dir.resolve("config.json");
    if (!Files.isRegularFile(configJson)) {
      throw new IOException(dir + ": no config.json");
    }
    JsonConfig json = JsonConfig.read(configJson);
    String type = json.modelType();
    if (architecture != null && !TASK_ARCHITECTURES.contains(architecture)
        && !BASE_ARCHITECTURES.contains(architecture)) {
      throw new IOException(String.format("%s: architecture '%s' is not supported; supported: %s", configJson,
          architecture, String.join(", ", concat(TASK_ARCHITECTURES, BASE_ARCHITECTURES))));
    }
    if (architecture != null && !fits(architecture, type)) {
      throw new IOException(String.format("%s: architecture '%s' does not fit model_type '%s'", configJson,
          architecture, type));
    }
    String name = json.has("_name_or_path") && !json.string("_name_or_path").isBlank()
        ? json.string("_name_or_path") : dir.toString();
    Record config = switch (type) {
      case "bert" -> BertConfig.read(configJson);
      case "llama", "mistral", "qwen2", "qwen3", "gemma" -> LlamaConfig.read(configJson);
      case "roberta", "xlm-roberta" -> RobertaConfig.read(configJson);
      case "distilbert" -> DistilBertConfig.read(configJson);
      case "gpt2" -> Gpt2Config.read(configJson);
      default -> throw new IOException(String.format("%s: model_type '%s' is not supported; supported: bert, llama, "
          + "mistral, qwen2, qwen3, gemma, roberta, xlm-roberta, distilbert, gpt2", configJson, type));
    };
    Long padTokenId = json.has("pad_token_id") && !json.isNull("pad_token_id")
        ? Long.valueOf(json.integer("pad_token_id")) : null;
    SameDiff sd;
    TaskType task;
    Set<String> unused;
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      if (config instanceof BertConfig b) {
        boolean sequence = "BertForSequenceClassification".equals(architecture);
        boolean token = "BertForTokenClassification".equals(architecture);
        sd = sequence ? Heads.bertForSequenceClassification(b, weights, numLabels, 0)
            : token ? Heads.bertForTokenClassification(b, weights, numLabels, 0) : Bert.encoder(b, weights);
        task = sequence ? TaskType.SEQ_CLS : token ? TaskType.TOKEN_CLS : TaskType.FEATURE_EXTRACTION;
      } else if (config instanceof RobertaConfig r) {
        // load(dir) builds the head when config.json's architectures names one; load(dir, architecture, n) asks
        boolean sequence = architecture == null ? r.numLabels() > 0 : architecture.endsWith("ForSequenceClassification");
        sd = sequence ? Heads.robertaForSequenceClassification(r, weights, architecture == null ? r.numLabels()
            : numLabels, 0) : Roberta.encoder(r.numLabels() == 0 ? r : withoutHead(r), weights);
        task = sequence ? TaskType.SEQ_CLS : TaskType.FEATURE_EXTRACTION;
      } else if (config instanceof DistilBertConfig d) {
        sd = DistilBert.encoder(d, weights);
        task = TaskType.FEATURE_EXTRACTION;
      } else if (config instanceof Gpt2Config g) {
        sd = Gpt2.causalLm(g, weights);
        task = TaskType.CAUSAL_LM;
      } else {
        LlamaConfig l = (LlamaConfig) config;
        boolean sequence = architecture != null && architecture.endsWith("ForSequenceClassification");
        sd = sequence ? Heads.llamaForSequenceClassification(l, weights, numLabels, padTokenId, 0)
            : Llama.causalLm(l, weights);
        task = sequence ? TaskType.SEQ_CLS : TaskType.CAUSAL_LM;
      }
      unused = weights.unused();
    }
    ModelOrigin.record(sd, name, task);
    int positions = config instanceof BertConfig b ? b.maxPositions()
        : config instanceof LlamaConfig l ? l.maxPositions()
        : config instanceof RobertaConfig r ? r.maxPositions() - r.padTokenId() - 1 // positions start after padding_idx
        : config instanceof DistilBertConfig d ? d.maxPositions()
        : ((Gpt2Config) config).maxPositions();
    Optional<Tokenizer> tokenizer = tokenizer(dir, positions);
    return config instanceof BertConfig b ? new Encoder(sd, b, unused, tokenizer, name, task)
        : config instanceof LlamaConfig l ? new Decoder(sd, l, unused, tokenizer, name, task)
        : new OtherModel(sd, config, unused, tokenizer, name, task);
  }

  private static RobertaConfig withoutHead(RobertaConfig r) {
    return new RobertaConfig(r.modelType(), r.vocabSize(), r.hiddenSize(), r.numLayers(), r.numHeads(),
        r.intermediateSize(), r.maxPositions(), r.typeVocabSize(), r.layerNormEps(), r.padTokenId(), 0);
  }

  private static Optional<Tokenizer> tokenizer(Path dir, int maxLength) throws IOException {
    Path file = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    try (InputStream in = Files.newInputStream(file)) {
      return Optional.of(Tokenizer.read(in, maxLength));
    } catch (IOException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  /** Whether {@code architecture} (e.g. {@code Qwen3ForCausalLM}) is a model of {@code model_type} {@code type}. */
  private static boolean fits(String architecture, String type) {
    String a = architecture.toLowerCase(java.util.Locale.ROOT);
    return a.startsWith(type.replace("-", ""));
  }

  private static List<String> concat(List<String> a, List<String> b) {
    return java.util.stream.Stream.concat(a.stream(), b.stream()).toList();
  }
}
