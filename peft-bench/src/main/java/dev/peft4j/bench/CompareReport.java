package dev.peft4j.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The results of a {@link Compare} run as text: CSV, JSON, Markdown and a plain terminal table. {@code settings}
 * (model, data, steps, batch, …) head the JSON and the Markdown.
 */
public final class CompareReport {

  static final List<String> COLUMNS = List.of("method", "description", "trainable_params", "all_params",
      "trainable_percent", "learning_rate", "steps", "train_seconds", "eval_seconds", "tokens_per_second",
      "peak_rss_mib", "first_loss", "last_loss", "accuracy", "f1", "roc_auc", "adapter_dir");

  private CompareReport() {}

  /** A header row and one row per result; RFC 4180 quoting; numbers with a '.' decimal point. */
  public static String csv(List<CompareResult> results) {
    StringBuilder out = new StringBuilder(String.join(",", COLUMNS)).append('\n');
    for (CompareResult r : results) {
      List<String> cells = List.of(r.method(), r.description(), Long.toString(r.trainableParams()),
          Long.toString(r.allParams()), num(r.trainablePercent(), 6), sci(r.learningRate()),
          Integer.toString(r.steps()), num(r.trainSeconds(), 2), num(r.evalSeconds(), 2), num(r.tokensPerSecond(), 1),
          mib(r.peakRssBytes()), num(r.firstLoss(), 4), num(r.lastLoss(), 4), num(r.accuracy(), 4), num(r.f1(), 4),
          num(r.rocAuc(), 4), r.adapterDir());
      out.append(String.join(",", cells.stream().map(CompareReport::csvCell).toList())).append('\n');
    }
    return out.toString();
  }

  /** {@code {"settings": {...}, "results": [{...}, ...]}} with the CSV's column names as keys. */
  public static String json(Map<String, Object> settings, List<CompareResult> results) {
    JsonObject root = new JsonObject();
    JsonObject s = new JsonObject();
    settings.forEach((k, v) -> {
      if (v instanceof Number n) {
        s.addProperty(k, n);
      } else {
        s.addProperty(k, String.valueOf(v));
      }
    });
    root.add("settings", s);
    JsonArray rows = new JsonArray();
    for (CompareResult r : results) {
      JsonObject o = new JsonObject();
      o.addProperty("method", r.method());
      o.addProperty("description", r.description());
      o.addProperty("trainable_params", r.trainableParams());
      o.addProperty("all_params", r.allParams());
      o.addProperty("trainable_percent", r.trainablePercent());
      o.addProperty("learning_rate", r.learningRate());
      o.addProperty("steps", r.steps());
      o.addProperty("train_seconds", r.trainSeconds());
      o.addProperty("eval_seconds", r.evalSeconds());
      o.addProperty("tokens_per_second", r.tokensPerSecond());
      o.addProperty("peak_rss_mib", r.peakRssBytes() < 0 ? null : r.peakRssBytes() / (double) (1 << 20));
      o.addProperty("first_loss", r.firstLoss());
      o.addProperty("last_loss", r.lastLoss());
      o.addProperty("accuracy", r.accuracy());
      o.addProperty("f1", r.f1());
      o.addProperty("roc_auc", Double.isNaN(r.rocAuc()) ? null : r.rocAuc());
      o.addProperty("adapter_dir", r.adapterDir());
      rows.add(o);
    }
    root.add("results", rows);
    return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(root) + "\n";
  }

  /** A heading, the settings as a list, and the results table. */
  public static String markdown(Map<String, Object> settings, List<CompareResult> results) {
    StringBuilder out = new StringBuilder("# peft4j compare\n\n");
    settings.forEach((k, v) -> out.append("- ").append(k).append(": ").append(v).append('\n'));
    out.append("\n| method | trainable params | trainable % | train s | tokens/s | peak RSS MiB | accuracy | F1 "
        + "| ROC AUC | loss first → last | lr | what it trains |\n");
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n");
    for (CompareResult r : results) {
      out.append(String.format(Locale.ROOT, "| %s | %,d | %s | %.1f | %,.0f | %s | %.4f | %.4f | %.4f | %.3f → %.3f "
              + "| %s | %s |%n", r.method(), r.trainableParams(), num(r.trainablePercent(), 4), r.trainSeconds(),
          r.tokensPerSecond(), mib(r.peakRssBytes()), r.accuracy(), r.f1(), r.rocAuc(), r.firstLoss(), r.lastLoss(),
          sci(r.learningRate()), r.description().replace("|", "\\|")));
    }
    return out.toString();
  }

  /** Fixed-width columns for the terminal. */
  public static String table(List<CompareResult> results) {
    String format = "%-18s %12s %10s %8s %9s %9s %8s %8s %8s%n";
    StringBuilder out = new StringBuilder(String.format(Locale.ROOT, format, "method", "trainable", "trainable%",
        "train s", "tokens/s", "peak MiB", "accuracy", "F1", "ROC AUC"));
    for (CompareResult r : results) {
      out.append(String.format(Locale.ROOT, format, r.method(), String.format(Locale.ROOT, "%,d",
              r.trainableParams()), num(r.trainablePercent(), 4), num(r.trainSeconds(), 1),
          String.format(Locale.ROOT, "%,.0f", r.tokensPerSecond()), mib(r.peakRssBytes()), num(r.accuracy(), 4),
          num(r.f1(), 4), num(r.rocAuc(), 4)));
    }
    return out.toString();
  }

  private static String num(double v, int decimals) {
    return Double.isNaN(v) ? "NaN" : String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  private static String sci(double v) {
    return String.format(Locale.ROOT, "%.0e", v);
  }

  private static String mib(long bytes) {
    return bytes < 0 ? "n/a" : Long.toString(Math.round(bytes / (double) (1 << 20)));
  }

  private static String csvCell(String s) {
    return s.contains(",") || s.contains("\"") || s.contains("\n") ? '"' + s.replace("\"", "\"\"") + '"' : s;
  }
}
