package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code run.json} in a {@link Compare} output directory: the options that decide a run's results, which every session
 * of the run must share ({@code --resume} refuses others, naming them), and one entry per session (the start, then each
 * {@code --resume}) with its start time, the peft4j commit it ran and the methods it was asked for. {@code --methods}
 * is not among the shared options: a session may run some methods and a later one add others.
 *
 * @param options  option name → value as given or resolved from the preset, plus the data file's SHA-256
 * @param sessions in order
 */
record RunFile(Map<String, String> options, List<Session> sessions) {

  static final String NAME = "run.json";

  /**
   * One session of a run.
   *
   * @param started UTC, to the second
   * @param commit  {@code git describe --always --dirty} where compare ran, or "unknown"
   * @param cores   the cores Java saw
   * @param methods the methods the session was asked for
   */
  record Session(String started, String commit, int cores, List<String> methods) {}

  RunFile {
    options = Map.copyOf(new LinkedHashMap<>(options));
    sessions = List.copyOf(sessions);
  }

  /** The options of {@code o} that decide its results (all but methods, output directory and how it is opened). */
  static Map<String, String> options(Compare.Options o) throws IOException {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("preset", o.preset().name().toLowerCase(Locale.ROOT));
    m.put("--train-rows", Integer.toString(o.trainRows()));
    m.put("--validation", Integer.toString(o.validationRows()));
    m.put("--test", Integer.toString(o.testRows()));
    m.put("--epochs", Integer.toString(o.epochs()));
    m.put("--patience", Integer.toString(o.patience()));
    m.put("--seeds", Integer.toString(o.seeds()));
    m.put("--lr-sweep", Boolean.toString(o.sweep()));
    m.put("--batch", Integer.toString(o.batch()));
    m.put("--seq", Integer.toString(o.seqLength()));
    // the file's content, not its path: a later session may name the same file from another directory
    m.put("data SHA-256", sha256(o.data()));
    m.put("--text-column", o.textColumn());
    m.put("--label-column", o.labelColumn());
    m.put("--split-column", o.splitColumn());
    m.put("--model", o.model() == null ? "bundled" : o.model().toAbsolutePath().normalize().toString());
    m.put("--seed", Long.toString(o.seed()));
    m.put("--workers", Integer.toString(o.workers()));
    m.put("--positive-label", o.positiveLabel() == null ? "minority" : o.positiveLabel());
    m.put("--allow-single-class", Boolean.toString(o.allowSingleClass()));
    m.put("trials in their own JVM", Boolean.toString(o.fork()));
    return m;
  }

  /** A new run's file, its first session now. */
  static RunFile start(Map<String, String> options, List<String> methods) {
    return new RunFile(options, List.of(session(methods)));
  }

  /**
   * This run with one more session, if {@code now} equals its options.
   *
   * @throws IllegalArgumentException naming each option that differs, with the run's value and the new one
   */
  RunFile resumedWith(Map<String, String> now, List<String> methods, Path out) {
    List<String> differing = new ArrayList<>();
    for (String key : now.keySet()) {
      if (!now.get(key).equals(options.get(key))) {
        differing.add(key + " " + options.getOrDefault(key, "(not recorded)") + " in the run, " + now.get(key)
            + " now");
      }
    }
    checkArgument(differing.isEmpty(), "--resume: %s holds a run with other options: %s; give the run's options "
        + "(only --methods may change), or --overwrite to start again", out.resolve(NAME), String.join("; ",
        differing));
    List<Session> more = new ArrayList<>(sessions);
    more.add(session(methods));
    return new RunFile(options, more);
  }

  /** Reads {@code out/run.json}. */
  static RunFile read(Path out) throws IOException {
    Path file = out.resolve(NAME);
    try {
      JsonObject o = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
      Map<String, String> options = new LinkedHashMap<>();
      o.getAsJsonObject("options").entrySet().forEach(e -> options.put(e.getKey(), e.getValue().getAsString()));
      List<Session> sessions = new ArrayList<>();
      for (var e : o.getAsJsonArray("sessions")) {
        JsonObject s = e.getAsJsonObject();
        List<String> methods = new ArrayList<>();
        s.getAsJsonArray("methods").forEach(m -> methods.add(m.getAsString()));
        sessions.add(new Session(s.get("started").getAsString(), s.get("commit").getAsString(),
            s.get("cores").getAsInt(), methods));
      }
      return new RunFile(options, sessions);
    } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException e) {
      throw new IllegalArgumentException(String.format("--resume: %s is not a compare run file (%s); --overwrite "
          + "starts the run again", file, e.getMessage()), e);
    }
  }

  /** Writes {@code out/run.json} through a temporary file and an atomic rename. */
  void write(Path out) throws IOException {
    JsonObject o = new JsonObject();
    JsonObject opts = new JsonObject();
    options.keySet().stream().sorted().forEach(k -> opts.addProperty(k, options.get(k)));
    o.add("options", opts);
    JsonArray list = new JsonArray();
    for (Session s : sessions) {
      JsonObject j = new JsonObject();
      j.addProperty("started", s.started());
      j.addProperty("commit", s.commit());
      j.addProperty("cores", s.cores());
      JsonArray methods = new JsonArray();
      s.methods().forEach(methods::add);
      j.add("methods", methods);
      list.add(j);
    }
    o.add("sessions", list);
    Path tmp = out.resolve(NAME + ".tmp");
    Files.writeString(tmp, new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n",
        StandardCharsets.UTF_8);
    Files.move(tmp, out.resolve(NAME), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** {@code 2 (started 2026-12-06T23:10:00Z at abc123; resumed 2026-12-07T08:00:00Z at abc123)}. */
  String describeSessions() {
    StringBuilder out = new StringBuilder().append(sessions.size()).append(" (");
    for (int i = 0; i < sessions.size(); i++) {
      Session s = sessions.get(i);
      out.append(i == 0 ? "started " : "; resumed ").append(s.started()).append(" at commit ").append(s.commit())
          .append(", methods ").append(String.join(",", s.methods()));
    }
    return out.append(')').toString();
  }

  private static Session session(List<String> methods) {
    return new Session(Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(), commit(),
        Runtime.getRuntime().availableProcessors(), methods);
  }

  /** {@code git describe --always --dirty} in the working directory; "unknown" without git or a repository. */
  static String commit() {
    try {
      Process git = new ProcessBuilder("git", "describe", "--always", "--dirty", "--abbrev=12")
          .redirectErrorStream(true).start();
      String text;
      try (InputStream in = git.getInputStream()) {
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
      }
      if (!git.waitFor(10, TimeUnit.SECONDS)) {
        git.destroyForcibly();
        return "unknown";
      }
      return git.exitValue() == 0 && !text.isEmpty() ? text : "unknown";
    } catch (IOException e) {
      return "unknown";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }

  static String sha256(Path file) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java platform", e);
    }
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
      in.transferTo(OutputStream.nullOutputStream());
    }
    return HexFormat.of().formatHex(digest.digest());
  }
}
