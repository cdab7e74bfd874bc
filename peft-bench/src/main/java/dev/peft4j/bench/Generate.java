package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonParseException;
import dev.peft4j.PeftModel;
import dev.peft4j.generate.GenerationConfig;
import dev.peft4j.generate.Generator;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.ChatTemplate;
import dev.peft4j.model.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.nd4j.autodiff.samediff.SameDiff;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Generates text with a Llama-family checkpoint ({@code HfModels.loadDecoder}: Llama, Mistral, Qwen2, Qwen3, Gemma)
 * and optionally an adapter in Hugging Face PEFT's format, from prompts given as arguments or read from a file (one
 * per line, or JSON Lines with a {@code "prompt"} field), greedy or sampled, with the KV cache; progress on standard
 * error. Prompts are encoded with the checkpoint's {@code tokenizer.json} (special tokens added, as transformers'
 * tokenizer call does), completions decoded without special tokens; {@code --ids} takes and prints token ids instead;
 * {@code --chat} renders each prompt as a user message (after an optional {@code --system} message) with the
 * checkpoint's chat template and the generation prompt, the template's text then encoded without adding special
 * tokens again (as transformers' {@code apply_chat_template(tokenize=True)}).
 *
 * <pre>{@code
 * generate --model ~/models/Qwen3-0.6B --adapter my-lora --max-new-tokens 64 "The capital of France is"
 * generate --model DIR --input prompts.jsonl --sample --temperature 0.7 --top-p 0.9 --seed 1 --format jsonl
 * }</pre>
 */
public final class Generate {

  /** Output formats. */
  enum Format { TEXT, JSONL }

  /** The command line. */
  @CommandLine.Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
      description = "Generate text with a decoder checkpoint and an optional adapter.")
  static final class Command implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "a Hugging Face Llama-family "
        + "checkpoint directory (config.json, safetensors; tokenizer.json unless --ids)")
    Path model;
    @Option(names = "--adapter", paramLabel = "DIR", description = "an adapter directory in Hugging Face PEFT's format")
    Path adapter;
    @Option(names = "--input", paramLabel = "FILE", description = "prompts, one per line, or JSON Lines with "
        + "\"prompt\" (every non-blank line starting with '{'); - for standard input")
    String input;
    @Parameters(paramLabel = "PROMPT", arity = "0..*", description = "prompts (instead of --input)")
    List<String> prompts = new ArrayList<>();
    @Option(names = "--ids", description = "prompts are token ids separated by spaces; completions are printed as ids")
    boolean ids;
    @Option(names = "--chat", description = "each prompt is a user message, rendered with the checkpoint's chat "
        + "template (tokenizer_config.json) and the assistant's generation prompt, as transformers' "
        + "apply_chat_template(add_generation_prompt=True)")
    boolean chat;
    @Option(names = "--system", paramLabel = "TEXT", description = "with --chat: a system message before each prompt")
    String system;
    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "32", description = "tokens to generate per "
        + "prompt at most (default ${DEFAULT-VALUE})")
    int maxNewTokens;
    @Option(names = "--sample", description = "sample instead of greedy decoding (default: the checkpoint's "
        + "generation_config.json do_sample, else greedy)")
    Boolean sample;
    @Option(names = "--temperature", paramLabel = "T", description = "sampling temperature > 0 (default: "
        + "generation_config.json, else 1)")
    Double temperature;
    @Option(names = "--top-k", paramLabel = "K", description = "keep the K most likely tokens, 0 = all (default: "
        + "generation_config.json, else 50)")
    Integer topK;
    @Option(names = "--top-p", paramLabel = "P", description = "nucleus sampling, in (0, 1] (default: "
        + "generation_config.json, else 1)")
    Double topP;
    @Option(names = "--repetition-penalty", paramLabel = "R", description = "> 0, 1 = none (default: "
        + "generation_config.json, else 1)")
    Double repetitionPenalty;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "sampling seed (default "
        + "${DEFAULT-VALUE})")
    long seed;
    @Option(names = "--batch", paramLabel = "N", defaultValue = "8", description = "prompts generated together, "
        + "left-padded (default ${DEFAULT-VALUE})")
    int batch;
    @Option(names = "--no-cache", description = "recompute the whole sequence at every step (slower; for comparison)")
    boolean noCache;
    @Option(names = "--format", paramLabel = "text|jsonl", defaultValue = "text", description = "text: each "
        + "completion on its own line (newlines as \\n); jsonl: {\"prompt\", \"completion\", \"tokens\"} per line",
        converter = FormatConverter.class)
    Format format;

    @Override
    public Integer call() throws IOException {
      try {
        run(this, System.in, System.out, System.err);
        return 0;
      } catch (IllegalArgumentException e) {
        System.err.println("generate: " + e.getMessage());
        return 2;
      }
    }

    GenerationConfig config() throws IOException {
      GenerationConfig c = GenerationConfig.fromCheckpoint(model, maxNewTokens).withSeed(seed);
      c = sample != null ? c.withSampling(sample) : c;
      c = temperature != null ? c.withTemperature(temperature) : c;
      c = topK != null ? c.withTopK(topK) : c;
      c = topP != null ? c.withTopP(topP) : c;
      return repetitionPenalty != null ? c.withRepetitionPenalty(repetitionPenalty) : c;
    }
  }

  static final class FormatConverter extends LowerCaseEnum<Format> {
    FormatConverter() {
      super(Format.class, "format");
    }
  }

  private Generate() {}

  public static void main(String[] args) {
    System.exit(new CommandLine(new Command()).execute(args));
  }

  /**
   * Validates the options, the checkpoint and every prompt (its length against the model's positions included), then
   * generates batch by batch, printing each batch's completions as they are done.
   *
   * @throws IllegalArgumentException naming the bad option, file, line or prompt; nothing is printed then
   */
  static void run(Command c, InputStream stdin, PrintStream out, PrintStream progress) throws IOException {
    checkArgument(c.batch > 0, "--batch must be > 0, got %s", c.batch);
    checkArgument(Files.isRegularFile(c.model.resolve("config.json")), "--model %s: no config.json (a Hugging Face "
        + "checkpoint directory is expected)", c.model);
    checkArgument(c.adapter == null || Files.isRegularFile(c.adapter.resolve("adapter_config.json")),
        "--adapter %s: no adapter_config.json", c.adapter);
    Path tokenizerJson = c.model.resolve("tokenizer.json");
    checkArgument(c.ids || Files.isRegularFile(tokenizerJson), "--model %s: no tokenizer.json (or use --ids)",
        c.model);
    checkArgument(!(c.chat && c.ids), "--chat renders text prompts; it does not go with --ids");
    checkArgument(c.system == null || c.chat, "--system is a chat message: it needs --chat");
    ChatTemplate template = c.chat ? chatTemplate(c.model) : null;
    GenerationConfig config = c.config();
    List<String> texts = prompts(c, stdin);

    SameDiff sd = HfModels.loadDecoder(c.model).sameDiff();
    PeftModel peft = c.adapter == null ? null : Peft.load(sd, c.adapter);
    Generator generator = peft == null ? Generator.of(sd) : Generator.of(peft);
    generator = c.noCache ? generator.withoutCache() : generator;
    try (Tokenizer tokenizer = c.ids ? null : tokenizer(tokenizerJson)) {
      List<long[]> encoded = new ArrayList<>();
      for (int i = 0; i < texts.size(); i++) {
        encoded.add(c.ids ? parseIds(texts.get(i), i)
            : template != null ? tokenizer.ids(template.render(chat(c.system, texts.get(i)), true), false)
            : tokenizer.ids(texts.get(i), true));
      }
      generator.check(encoded, config);
      long start = System.nanoTime();
      long tokens = 0;
      for (int from = 0; from < encoded.size(); from += c.batch) {
        int to = Math.min(encoded.size(), from + c.batch);
        List<long[]> done = generator.generate(encoded.subList(from, to), config);
        for (int i = 0; i < done.size(); i++) {
          long[] t = done.get(i);
          tokens += t.length;
          String completion = c.ids ? Arrays.stream(t).mapToObj(Long::toString).collect(Collectors.joining(" "))
              : tokenizer.decode(t, true);
          if (c.format == Format.TEXT) {
            out.println(completion.replace("\\", "\\\\").replace("\n", "\\n"));
          } else {
            JsonObject o = new JsonObject();
            o.addProperty("prompt", texts.get(from + i));
            o.addProperty("completion", completion);
            com.google.gson.JsonArray ids = new com.google.gson.JsonArray();
            Arrays.stream(t).forEach(ids::add);
            o.add("tokens", ids);
            out.println(o);
          }
        }
        out.flush();
        double seconds = (System.nanoTime() - start) / 1e9;
        progress.printf(Locale.ROOT, "generate: %d/%d prompts, %d tokens, %.1f s, %.1f tokens/s%n", to,
            encoded.size(), tokens, seconds, tokens / seconds);
      }
    }
  }

  /** The chat template of the checkpoint's tokenizer_config.json, which {@code --chat} needs. */
  private static ChatTemplate chatTemplate(Path model) throws IOException {
    Path config = model.resolve("tokenizer_config.json");
    checkArgument(Files.isRegularFile(config), "--chat: %s has no tokenizer_config.json (its chat template)", model);
    return ChatTemplate.read(config).orElseThrow(() -> new IllegalArgumentException(
        "--chat: " + config + " has no chat_template"));
  }

  /** An optional system message and the prompt as the user's message. */
  private static List<ChatTemplate.Message> chat(String system, String prompt) {
    List<ChatTemplate.Message> messages = new ArrayList<>();
    if (system != null) {
      messages.add(new ChatTemplate.Message("system", system));
    }
    messages.add(new ChatTemplate.Message("user", prompt));
    return messages;
  }

  /** The checkpoint's tokenizer; its truncation length does not matter: only {@code ids} and {@code decode} are used. */
  private static Tokenizer tokenizer(Path tokenizerJson) throws IOException {
    try (InputStream in = Files.newInputStream(tokenizerJson)) {
      return Tokenizer.read(in, 512);
    }
  }

  /** The prompts of the arguments or of {@code --input}, which exclude each other. */
  private static List<String> prompts(Command c, InputStream stdin) throws IOException {
    checkArgument(c.input == null || c.prompts.isEmpty(), "give prompts as arguments or --input, not both");
    if (c.input == null) {
      checkArgument(!c.prompts.isEmpty(), "no prompt: give prompts as arguments or --input FILE");
      return c.prompts;
    }
    String source = c.input.equals("-") ? "standard input" : c.input;
    checkArgument(c.input.equals("-") || Files.isRegularFile(Path.of(c.input)), "--input %s: not found", c.input);
    String text = c.input.equals("-") ? TextClassificationData.utf8(stdin.readAllBytes(), source)
        : TextClassificationData.utf8(Path.of(c.input));
    String[] lines = text.split("\r?\n", -1);
    boolean jsonl = Arrays.stream(lines).filter(l -> !l.isBlank()).allMatch(l -> l.strip().startsWith("{"));
    List<String> out = new ArrayList<>();
    for (int i = 0; i < lines.length; i++) {
      if (lines[i].isBlank()) {
        continue;
      }
      if (!jsonl) {
        out.add(lines[i]);
        continue;
      }
      JsonElement e;
      try {
        e = JsonParser.parseString(lines[i]);
      } catch (JsonParseException ex) {
        throw new IllegalArgumentException(String.format("%s:%s: not JSON (%s)", source, i + 1, ex.getMessage()));
      }
      checkArgument(e.isJsonObject() && e.getAsJsonObject().has("prompt")
          && e.getAsJsonObject().get("prompt").isJsonPrimitive(), "%s:%s: a JSON object with a string \"prompt\" "
          + "is expected, got %s", source, i + 1, lines[i].length() > 80 ? lines[i].substring(0, 80) + "…" : lines[i]);
      out.add(e.getAsJsonObject().get("prompt").getAsString());
    }
    checkArgument(!out.isEmpty(), "%s: no prompts (one per line, or JSON Lines with \"prompt\")", source);
    return out;
  }

  private static long[] parseIds(String prompt, int index) {
    try {
      return Arrays.stream(prompt.strip().split("\\s+")).filter(s -> !s.isEmpty()).mapToLong(Long::parseLong)
          .toArray();
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(String.format("prompt %s: --ids expects token ids separated by spaces, got "
          + "'%s'", index, prompt));
    }
  }
}
