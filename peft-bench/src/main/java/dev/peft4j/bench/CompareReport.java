package dev.peft4j.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The results of a {@link Compare} run as text: CSV, JSON, Markdown and a plain terminal table, rows in the order
 * given (ranked by test macro-F1, the majority-class baseline among them). {@code settings} (model, data, rows used,
 * protocol, …) head the JSON and the Markdown. A metric over several seeds is written as mean and sample standard
 * deviation ({@link MeanStd}).
 */
public final class CompareReport {

  static final List<String> COLUMNS = List.of("method", "description", "trainable_params", "all_params",
      "trainable_percent", "learning_rate", "learning_rates_tried", "seeds", "epochs", "steps", "train_seconds",
      "eval_seconds", "tokens_per_second", "peak_rss_mib", "validation_loss", "accuracy", "accuracy_std", "macro_f1",
      "macro_f1_std", "positive_f1", "positive_f1_std", "roc_auc", "roc_auc_std", "adapter_dir");

  private CompareReport() {}

  /** A header row and one row per result; RFC 4180 quoting; numbers with a '.' decimal point, empty when undefined. */
  public static String csv(List<CompareResult> results) {
    StringBuilder out = new StringBuilder(String.join(",", COLUMNS)).append('\n');
    for (CompareResult r : results) {
      List<String> cells = List.of(r.method(), r.description(), Long.toString(r.trainableParams()),
          Long.toString(r.allParams()), num(r.trainablePercent(), 6), sci(r.learningRate()),
          r.learningRatesTried().stream().map(CompareReport::sci).collect(Collectors.joining(" ")),
          Integer.toString(r.seeds()), num(r.epochs(), 2), num(r.steps(), 1), num(r.trainSeconds(), 2),
          num(r.evalSeconds(), 2), num(r.tokensPerSecond(), 1), mib(r.peakRssBytes()), num(r.validationLoss(), 4),
          num(r.accuracy().mean(), 4), num(r.accuracy().std(), 4), num(r.macroF1().mean(), 4),
          num(r.macroF1().std(), 4), num(r.positiveF1().mean(), 4), num(r.positiveF1().std(), 4),
          num(r.rocAuc().mean(), 4), num(r.rocAuc().std(), 4), r.adapterDir() == null ? "" : r.adapterDir());
      out.append(String.join(",", cells.stream().map(CompareReport::csvCell).toList())).append('\n');
    }
    return out.toString();
  }

  /** {@code {"settings": {...}, "results": [{...}, ...]}} with the CSV's column names as keys; null when undefined. */
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
      o.addProperty("learning_rate", finite(r.learningRate()));
      JsonArray rates = new JsonArray();
      r.learningRatesTried().forEach(rates::add);
      o.add("learning_rates_tried", rates);
      o.addProperty("seeds", r.seeds());
      o.addProperty("epochs", r.epochs());
      o.addProperty("steps", r.steps());
      o.addProperty("train_seconds", r.trainSeconds());
      o.addProperty("eval_seconds", r.evalSeconds());
      o.addProperty("tokens_per_second", r.tokensPerSecond());
      o.addProperty("peak_rss_mib", r.peakRssBytes() < 0 ? null : r.peakRssBytes() / (double) (1 << 20));
      o.addProperty("validation_loss", finite(r.validationLoss()));
      for (var metric : List.of(List.of("accuracy", r.accuracy()), List.of("macro_f1", r.macroF1()),
          List.of("positive_f1", r.positiveF1()), List.of("roc_auc", r.rocAuc()))) {
        MeanStd m = (MeanStd) metric.get(1);
        o.addProperty((String) metric.get(0), finite(m.mean()));
        o.addProperty(metric.get(0) + "_std", finite(m.std()));
      }
      o.addProperty("adapter_dir", r.adapterDir());
      rows.add(o);
    }
    root.add("results", rows);
    return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(root) + "\n";
  }

  /** A heading, the settings as a list, and the results table, ranked as given; {@code aucName} heads the AUC. */
  public static String markdown(Map<String, Object> settings, List<CompareResult> results, String positiveLabel,
      String aucName) {
    StringBuilder out = new StringBuilder("# peft4j compare\n\n");
    settings.forEach((k, v) -> out.append("- ").append(k).append(": ").append(v).append('\n'));
    out.append("\nTest-split scores (mean ± sample std over the seeds). Ranked by macro-F1.\n\n");
    out.append("| rank | method | macro-F1 | F1 of '").append(positiveLabel.replace("|", "\\|"))
        .append("' | accuracy | ").append(aucName).append(" | trainable params | trainable % | lr "
            + "(tried) | epochs | train s | tokens/s | peak RSS MiB | what it trains |\n");
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n");
    int rank = 1;
    for (CompareResult r : results) {
      out.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %,d | %s | %s | %s | %s | %s | %s | %s "
              + "|%n", r.isBaseline() ? "—" : Integer.toString(rank++), r.isBaseline() ? "**" + r.method() + "**"
              : r.method(), r.macroF1().format(4), r.positiveF1().format(4), r.accuracy().format(4),
          r.rocAuc().format(4), r.trainableParams(), num(r.trainablePercent(), 4), rates(r),
          r.isBaseline() ? "—" : num(r.epochs(), 1), r.isBaseline() ? "—" : num(r.trainSeconds(), 1),
          r.isBaseline() ? "—" : String.format(Locale.ROOT, "%,.0f", r.tokensPerSecond()), mib(r.peakRssBytes()),
          r.description().replace("|", "\\|")));
    }
    return out.toString();
  }

  /** Fixed-width columns for the terminal; {@code aucName} from {@link Metrics#aucName}. */
  public static String table(List<CompareResult> results, String positiveLabel, String aucName) {
    String format = "%-16s %17s %17s %17s %17s %12s %9s %8s %9s%n";
    String f1 = "F1 '" + (positiveLabel.length() > 12 ? positiveLabel.substring(0, 12) : positiveLabel) + "'";
    StringBuilder out = new StringBuilder(String.format(Locale.ROOT, format, "method", "macro-F1", f1, "accuracy",
        aucName.equals("ROC AUC") ? "ROC AUC" : "AUC macro OvR", "trainable", "trainable%", "train s", "peak MiB"));
    for (CompareResult r : results) {
      out.append(String.format(Locale.ROOT, format, r.method(), r.macroF1().format(4), r.positiveF1().format(4),
          r.accuracy().format(4), r.rocAuc().format(4), String.format(Locale.ROOT, "%,d", r.trainableParams()),
          num(r.trainablePercent(), 4), num(r.trainSeconds(), 1), mib(r.peakRssBytes())));
    }
    return out.toString();
  }

  private static String rates(CompareResult r) {
    if (Double.isNaN(r.learningRate())) {
      return "—";
    }
    return r.learningRatesTried().size() <= 1 ? sci(r.learningRate()) : sci(r.learningRate()) + " ("
        + r.learningRatesTried().stream().map(CompareReport::sci).collect(Collectors.joining(", ")) + ")";
  }

  private static Double finite(double v) {
    return Double.isFinite(v) ? v : null;
  }

  private static String num(double v, int decimals) {
    return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  /** {@code 5e-04}, {@code 2.5e-04}: two significant digits at most, no trailing zero. */
  static String sci(double v) {
    return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.1e", v).replace(".0e", "e");
  }

  private static String mib(long bytes) {
    return bytes < 0 ? "n/a" : Long.toString(Math.round(bytes / (double) (1 << 20)));
  }

  private static String csvCell(String s) {
    return s.contains(",") || s.contains("\"") || s.contains("\n") ? '"' + s.replace("\"", "\"\"") + '"' : s;
  }
}
