package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.peft4j.BackendCheck;
import dev.peft4j.PeftModel;
import dev.peft4j.TaskType;
import dev.peft4j.lora.LoraConfig;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.HfCheckpoint;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.Tokenizer;
import dev.peft4j.train.Batch;
import dev.peft4j.train.InstructionBatches;
import dev.peft4j.train.InstructionData;
import dev.peft4j.train.Trainer;
import dev.peft4j.train.TrainingHistory;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import org.nd4j.autodiff.samediff.SameDiff;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * Fine-tunes a causal LM (a Llama, Mistral, Qwen2, Qwen3 or Gemma checkpoint directory) on instruction data with
 * LoRA or DoRA, the loss on the responses only ({@link InstructionBatches}), and saves the adapter in Hugging Face
 * PEFT's format. Everything the run reads is checked before the model is loaded: the options, {@code --out}, the
 * JSONL file (every line), the tokenizer against the model's vocabulary, the chat template, each example's length.
 *
 * <pre>{@code
 * finetune --model qwen2.5-0.5b-instruct --data train.jsonl --r 16 --alpha 32 --targets q_proj,v_proj \
 *     --epochs 2 --lr 2e-4 --batch 4 --seq 512 --out adapters/my-lora
 * }</pre>
 */
public final class Finetune {

  /** The methods {@code --method} names. */
  enum Method { LORA, DORA }

  /** The command line. */
  @CommandLine.Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
      description = "Fine-tune a causal LM on JSONL instruction data (prompt/response or messages) with LoRA or DoRA;"
          + " the loss counts the response tokens only.")
  static final class Command implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "a decoder checkpoint directory: "
        + "config.json, safetensors, tokenizer.json (tokenizer_config.json for the chat template and eos)")
    Path model;
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "JSONL, one {\"prompt\", "
        + "\"response\"} or {\"messages\": [{\"role\", \"content\"}, …]} per line")
    Path data;
    @Option(names = "--out", required = true, paramLabel = "DIR", description = "where the adapter is saved "
        + "(adapter_config.json, adapter_model.safetensors)")
    Path out;
    @Option(names = "--overwrite", description = "replace the adapter in --out if it exists")
    boolean overwrite;
    @Option(names = "--method", paramLabel = "lora|dora", defaultValue = "lora", converter = MethodConverter.class,
        description = "lora (default) or dora")
    Method method;
    @Option(names = "--r", paramLabel = "N", defaultValue = "8", description = "rank (default ${DEFAULT-VALUE})")
    int r;
    @Option(names = "--alpha", paramLabel = "A", defaultValue = "16", description = "scaling numerator, s = alpha/r "
        + "(default ${DEFAULT-VALUE})")
    double alpha;
    @Option(names = "--dropout", paramLabel = "P", defaultValue = "0.05", description = "dropout on the adapter's "
        + "input (default ${DEFAULT-VALUE})")
    double dropout;
    @Option(names = "--targets", paramLabel = "NAMES", split = ",", defaultValue = "q_proj,v_proj",
        description = "modules to adapt, comma-separated (default ${DEFAULT-VALUE}; all-linear for every linear)")
    List<String> targets;
    @Option(names = "--epochs", paramLabel = "N", defaultValue = "1", description = "passes over the data (default "
        + "${DEFAULT-VALUE}); --steps overrides")
    int epochs;
    @Option(names = "--steps", paramLabel = "N", description = "optimizer steps (default: epochs × batches)")
    Integer steps;
    @Option(names = "--lr", paramLabel = "LR", defaultValue = "2e-4", description = "peak learning rate (default "
        + "${DEFAULT-VALUE}), warm-up over the first tenth, then linear decay")
    double lr;
    @Option(names = "--batch", paramLabel = "N", defaultValue = "4", description = "examples per step (default "
        + "${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--seq", paramLabel = "N", description = "tokens kept per example (default: the model's "
        + "positions, at most 512); longer examples are cut")
    Integer seq;
    @Option(names = "--seed", paramLabel = "N", defaultValue = "0", description = "shuffling, initialisation and "
        + "dropout seed (default ${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--packing", description = "pack several examples into each row of --seq tokens (attention "
        + "kept within each example); --batch then counts rows")
    boolean packing;

    @Override
    public Integer call() {
      try {
        run(this, System.err);
        return 0;
      } catch (IllegalArgumentException | IOException e) {
        System.err.println("finetune: " + e.getMessage());
        return 2;
      }
    }
  }

  static final class MethodConverter implements CommandLine.ITypeConverter<Method> {
    @Override
    public Method convert(String value) {
      try {
        return Method.valueOf(value.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new CommandLine.TypeConversionException("'" + value + "' is not a method; methods: lora, dora");
      }
    }
  }

  /**
   * What a run did.
   *
   * @param responseLossBefore mean next-token loss over every response token of the data, before training
   * @param responseLossAfter  the same after training
   */
  record Result(int examples, int truncated, int steps, TrainingHistory history, double responseLossBefore,
      double responseLossAfter) {}

  private static final List<String> DECODER_TYPES = List.of("llama", "mistral", "qwen2", "qwen3", "gemma");

  private Finetune() {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new Command()).execute(args));
  }

  /** The options of {@code args}, as picocli parses them (for tests). */
  static Command parse(String... args) {
    return CommandLine.populateCommand(new Command(), args);
  }

  /**
   * Checks everything, trains, saves the adapter into {@code --out}, and reports progress to {@code progress}.
   *
   * @throws IllegalArgumentException naming the bad option, file or line; nothing is written then
   * @throws IOException if a file cannot be read or the adapter cannot be written
   */
  static Result run(Command c, PrintStream progress) throws IOException {
    checkArgument(c.r >= 1, "--r must be >= 1, got %s", c.r);
    checkArgument(c.alpha > 0, "--alpha must be > 0, got %s", c.alpha);
    checkArgument(c.dropout >= 0 && c.dropout < 1, "--dropout must be in [0, 1), got %s", c.dropout);
    checkArgument(c.lr > 0, "--lr must be > 0, got %s", c.lr);
    checkArgument(c.batch >= 1, "--batch must be >= 1, got %s", c.batch);
    checkArgument(c.epochs >= 1, "--epochs must be >= 1, got %s", c.epochs);
    checkArgument(c.steps == null || c.steps >= 1, "--steps must be >= 1, got %s", c.steps);
    checkArgument(!c.targets.isEmpty() && c.targets.stream().noneMatch(String::isBlank),
        "--targets must name modules, got %s", c.targets);
    checkArgument(!Files.exists(c.out) || Files.isDirectory(c.out), "--out %s is a file, not a directory", c.out);
    checkArgument(!Files.exists(c.out) || c.overwrite || isEmptyDirectory(c.out),
        "--out %s exists; pass --overwrite to replace the adapter in it", c.out);
    checkArgument(Files.isDirectory(c.model), "--model %s: not found (a decoder checkpoint directory is expected)",
        c.model);
    Path configJson = c.model.resolve("config.json");
    checkArgument(Files.isRegularFile(configJson), "--model %s: no config.json", c.model);
    checkArgument(Files.isRegularFile(c.model.resolve("tokenizer.json")), "--model %s: no tokenizer.json", c.model);
    JsonObject config = json(configJson);
    String type = config.has("model_type") ? config.get("model_type").getAsString() : "(none)";
    checkArgument(DECODER_TYPES.contains(type), "%s: model_type '%s' is not a decoder; supported: %s", configJson,
        type, String.join(", ", DECODER_TYPES));
    int positions = integer(config, "max_position_embeddings", configJson);
    int vocab = integer(config, "vocab_size", configJson);
    int seq = c.seq != null ? c.seq : Math.min(512, positions);
    checkArgument(seq >= 8, "--seq must be >= 8, got %s", seq);
    checkArgument(seq <= positions, "--seq %s is beyond the model's %s positions (max_position_embeddings of %s)",
        seq, positions, configJson);

    InstructionData data = InstructionData.read(c.data);
    Path tokenizerConfig = c.model.resolve("tokenizer_config.json");
    Optional<ChatTemplate> template = Files.isRegularFile(tokenizerConfig) ? ChatTemplate.read(tokenizerConfig)
        : Optional.empty();
    InstructionBatches encoded;
    long padId;
    try (InputStream in = Files.newInputStream(c.model.resolve("tokenizer.json"));
        Tokenizer tokenizer = Tokenizer.read(in, positions)) {
      checkArgument(tokenizer.vocabularySize() <= vocab, "%s has %s ids, more than the model's %s embedding rows "
          + "(vocab_size of %s): a tokenizer of another model?", c.model.resolve("tokenizer.json"),
          tokenizer.vocabularySize(), vocab, configJson);
      OptionalLong eos = eosId(config, tokenizerConfig, tokenizer);
      encoded = InstructionBatches.of(data, tokenizer, template, eos, seq);
      // padding is masked out of attention and loss, so any id does; the tokenizer's own, else eos, as HF falls back
      padId = tokenizer.padTokenId().orElse(eos.orElse(0));
    }
    InstructionBatches shuffled = encoded.shuffled(c.seed);
    List<Batch> batches = c.packing ? shuffled.packedBatches(c.batch, seq, padId) : shuffled.batches(c.batch, padId);
    int steps = c.steps != null ? c.steps : c.epochs * batches.size();
    progress.printf(Locale.ROOT, "finetune: %d examples (%d cut to %d tokens)%s, %s, %d steps of %d%n",
        encoded.examples().size(), encoded.truncated(), seq, c.packing ? " packed into " + batches.stream()
            .mapToLong(b -> b.inputs().get(Llama.INPUT_IDS).size(0)).sum() + " rows" : "",
        template.map(t -> "chat template " + t.family()).orElse("prompt + response, no chat template"), steps,
        c.batch);

    String name = config.has("_name_or_path") && !config.get("_name_or_path").getAsString().isBlank()
        ? config.get("_name_or_path").getAsString() : c.model.toString(); // as HfModels names a checkpoint
    PeftModel model = adapted(c, graph(c.model, c.packing), name);
    progress.println("finetune: " + model.trainableParameters());
    double before = responseLoss(model, batches);
    TrainingHistory history = Trainer.builder(model).steps(steps).learningRate(c.lr)
        .warmupSteps(Math.max(1, steps / 10)).seed(c.seed).progress(progress).build().fit(batches);
    double after = responseLoss(model, batches);
    model.save(c.out);
    progress.printf(Locale.ROOT, "finetune: response loss %.4f -> %.4f; adapter saved to %s%n", before, after, c.out);
    return new Result(encoded.examples().size(), encoded.truncated(), steps, history, before, after);
  }

  /** The checkpoint's causal-LM graph, packed or not, named after the checkpoint for the saved adapter. */
  private static SameDiff graph(Path dir, boolean packed) throws IOException {
    if (!packed) {
      HfModels.Decoder decoder = HfModels.loadDecoder(dir);
      decoder.tokenizer().ifPresent(Tokenizer::close);
      return decoder.sameDiff();
    }
    BackendCheck.requireBackend();
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      return Llama.causalLm(LlamaConfig.read(dir.resolve("config.json")), weights, true);
    }
  }

  private static PeftModel adapted(Command c, SameDiff sd, String name) {
    LoraConfig.Builder builder = c.method == Method.DORA ? Peft.dora(c.r) : Peft.lora(c.r);
    PeftModel model = builder.alpha(c.alpha).dropout(c.dropout).target(c.targets.toArray(String[]::new))
        .seed(c.seed).apply(sd);
    if (c.packing) { // HfModels records these for the unpacked graph
      model.baseModelNameOrPath(name).taskType(TaskType.CAUSAL_LM);
    }
    return model;
  }

  /** Mean next-token loss per response token over all batches (each batch's loss is its mean over its tokens). */
  static double responseLoss(PeftModel model, List<Batch> batches) {
    double sum = 0;
    long tokens = 0;
    for (Batch b : batches) {
      long counted = countedTargets(b);
      sum += model.output(b.inputs(), Llama.LOSS).get(Llama.LOSS).getDouble(0) * counted;
      tokens += counted;
    }
    return sum / tokens;
  }

  /** Labels the loss counts: every one but −100 and those at position 0 (the loss reads label t+1 at row t). */
  private static long countedTargets(Batch b) {
    long[][] labels = b.inputs().get(Llama.LABELS).toLongMatrix();
    long n = 0;
    for (long[] row : labels) {
      for (int t = 1; t < row.length; t++) {
        n += row[t] != Llama.IGNORE_INDEX ? 1 : 0;
      }
    }
    return n;
  }

  /**
   * The id ending a response without a chat template: tokenizer_config.json's {@code eos_token}, else config.json's
   * {@code eos_token_id} (its first, when a list).
   */
  private static OptionalLong eosId(JsonObject config, Path tokenizerConfig, Tokenizer tokenizer) throws IOException {
    if (Files.isRegularFile(tokenizerConfig)) {
      JsonElement eos = json(tokenizerConfig).get("eos_token");
      String token = eos == null || eos.isJsonNull() ? null
          : eos.isJsonObject() ? eos.getAsJsonObject().get("content").getAsString() : eos.getAsString();
      if (token != null) {
        OptionalLong id = tokenizer.tokenId(token);
        checkArgument(id.isPresent(), "%s: eos_token '%s' is not in the tokenizer's vocabulary", tokenizerConfig,
            token);
        return id;
      }
    }
    JsonElement id = config.get("eos_token_id");
    if (id == null || id.isJsonNull()) {
      return OptionalLong.empty();
    }
    return OptionalLong.of(id.isJsonArray() ? id.getAsJsonArray().get(0).getAsLong() : id.getAsLong());
  }

  private static boolean isEmptyDirectory(Path dir) throws IOException {
    try (var entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    }
  }

  private static JsonObject json(Path file) throws IOException {
    try {
      return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(file + ": not a JSON object: " + e.getMessage(), e);
    }
  }

  private static int integer(JsonObject o, String field, Path file) {
    checkArgument(o.has(field) && o.get(field).isJsonPrimitive(), "%s: no %s", file, field);
    return o.get(field).getAsInt();
  }
}
