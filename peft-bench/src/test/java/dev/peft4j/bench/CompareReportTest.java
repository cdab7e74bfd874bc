package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Rectangle;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The results files' content, and the chart as a PNG of the requested size that shows the data and the baseline. */
class CompareReportTest {

  static final CompareResult LORA = new CompareResult("lora", "LoRA r=8 on query, value", 74_498, 22_640_644,
      0.329045, 5e-4, List.of(2.5e-4, 5e-4, 1e-3), 3, 2.0, 80, 41.25, 6.5, 812.4, 2_147_483_648L, 0.2512,
      MeanStd.of(0.91, 0.92, 0.93), MeanStd.of(0.90, 0.91, 0.92), MeanStd.of(0.89, 0.90, 0.94),
      MeanStd.of(0.97, 0.97, 0.97), "adapters/lora");
  static final CompareResult IA3 = new CompareResult("ia3", "IA³ \"k, v\"", 10_754, 22_576_900, 0.047633, 3e-3,
      List.of(3e-3), 1, 1.0, 40, 30.0, 6.0, 1000.0, -1, 0.40, MeanStd.of(0.80), MeanStd.of(0.75), MeanStd.of(0.7),
      MeanStd.of(Double.NaN), "adapters/ia3");
  static final CompareResult BASELINE = new CompareResult(CompareResult.BASELINE, "always the training split's most "
      + "frequent label '0'", 0, 0, 0, Double.NaN, List.of(), 1, 0, 0, 0, 0, 0, -1, 0.6931, MeanStd.of(0.5),
      MeanStd.of(1.0 / 3), MeanStd.of(0), MeanStd.of(0.5), null);

  @Test
  void csvHasAHeaderAndOneQuotedRowPerResult() {
    String[] lines = CompareReport.csv(List.of(LORA, IA3, BASELINE)).split("\n");
    assertEquals(4, lines.length);
    assertEquals(String.join(",", CompareReport.COLUMNS), lines[0]);
    assertEquals("lora,\"LoRA r=8 on query, value\",74498,22640644,0.329045,5e-04,2.5e-04 5e-04 1e-03,3,2.00,80.0,"
        + "41.25,6.50,812.4,2048,0.2512,0.9200,0.0100,0.9100,0.0100,0.9100,0.0265,0.9700,0.0000,adapters/lora",
        lines[1]);
    assertEquals("ia3,\"IA³ \"\"k, v\"\"\",10754,22576900,0.047633,3e-03,3e-03,1,1.00,40.0,30.00,6.00,1000.0,n/a,"
        + "0.4000,0.8000,,0.7500,,0.7000,,,,adapters/ia3", lines[2]);
    assertEquals("majority-class,always the training split's most frequent label '0',0,0,0.000000,,,1,0.00,0.0,"
        + "0.00,0.00,0.0,n/a,0.6931,0.5000,,0.3333,,0.0000,,0.5000,,", lines[3]);
  }

  @Test
  void jsonHoldsTheSettingsAndEveryField() {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("model", "MiniLM");
    settings.put("epochs", 2);
    JsonObject root = JsonParser.parseString(CompareReport.json(settings, List.of(LORA, IA3, BASELINE)))
        .getAsJsonObject();
    assertEquals("MiniLM", root.getAsJsonObject("settings").get("model").getAsString());
    assertEquals(2, root.getAsJsonObject("settings").get("epochs").getAsInt());
    JsonObject lora = root.getAsJsonArray("results").get(0).getAsJsonObject();
    assertEquals(CompareReport.COLUMNS, List.copyOf(lora.keySet()));
    assertEquals(74_498, lora.get("trainable_params").getAsLong());
    assertEquals(0.91, lora.get("macro_f1").getAsDouble(), 1e-12);
    assertEquals(0.01, lora.get("macro_f1_std").getAsDouble(), 1e-12);
    assertEquals(3, lora.getAsJsonArray("learning_rates_tried").size());
    assertEquals(2048.0, lora.get("peak_rss_mib").getAsDouble(), 0);
    JsonObject ia3 = root.getAsJsonArray("results").get(1).getAsJsonObject();
    assertTrue(ia3.get("roc_auc").isJsonNull());
    assertTrue(ia3.get("macro_f1_std").isJsonNull(), "one seed has no std");
    assertTrue(ia3.get("peak_rss_mib").isJsonNull());
    assertEquals("IA³ \"k, v\"", ia3.get("description").getAsString());
    JsonObject baseline = root.getAsJsonArray("results").get(2).getAsJsonObject();
    assertTrue(baseline.get("learning_rate").isJsonNull() && baseline.get("adapter_dir").isJsonNull());
  }

  @Test
  void markdownListsTheSettingsAndRanksTheRowsWithTheBaselineUnranked() {
    String md = CompareReport.markdown(Map.of("epochs", 2), List.of(LORA, IA3, BASELINE), "spam", "ROC AUC");
    assertTrue(md.contains("- epochs: 2\n"), md);
    assertTrue(md.contains("| rank | method | macro-F1 | F1 of 'spam' | accuracy | ROC AUC |"), md);
    assertTrue(md.contains("| 1 | lora | 0.9100 ± 0.0100 | 0.9100 ± 0.0265 | 0.9200 ± 0.0100 | 0.9700 ± 0.0000 | "
        + "74,498 | 0.3290 | 5e-04 (2.5e-04, 5e-04, 1e-03) | 2.0 | 41.3 | 812 | 2048 | LoRA r=8 on query, value |\n"),
        md);
    assertTrue(md.contains("| 2 | ia3 | 0.7500 | 0.7000 | 0.8000 | n/a | 10,754 |"), md);
    assertTrue(md.contains("| — | **majority-class** | 0.3333 | 0.0000 | 0.5000 | 0.5000 | 0 | 0.0000 | — | — | — | — "
        + "| n/a |"), md);
    String table = CompareReport.table(List.of(LORA, IA3), "spam", "ROC AUC (macro one-vs-rest)");
    assertEquals(3, table.split("\n").length);
    assertTrue(table.split("\n")[0].contains("F1 'spam'") && table.split("\n")[0].contains("AUC macro OvR"), table);
    assertTrue(table.split("\n")[1].matches("lora\\s+0\\.9100 ± 0\\.0100\\s+0\\.9100 ± 0\\.0265\\s+"
        + "0\\.9200 ± 0\\.0100\\s+0\\.9700 ± 0\\.0000\\s+74,498\\s+0\\.3290\\s+41\\.3\\s+2048"), table);
  }

  @Test
  void chartIsAPngOfTheRequestedSizeThatShowsTheBubblesAndTheBaseline(@TempDir Path dir) throws IOException {
    Path png = dir.resolve("chart.png");
    CompareChart.write(List.of(LORA, IA3), BASELINE, png, 800, 500);
    byte[] bytes = Files.readAllBytes(png);
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'},
        java.util.Arrays.copyOf(bytes, 8));
    BufferedImage image = ImageIO.read(png.toFile());
    assertEquals(800, image.getWidth());
    assertEquals(500, image.getHeight());
    // the plot spans 10^-2 … 10^0 % on x (left 70, right 770) and 0.2 … 1.0 macro-F1 on y (top 50, bottom 440),
    // the baseline's 0.333 included: LoRA's bubble is centred at x = 70 + (log10(0.329) + 2) / 2 · 700,
    // y = 440 − (0.91 − 0.2) / 0.8 · 390
    int x = (int) Math.round(70 + (Math.log10(0.329045) + 2) / 2 * 700);
    int y = (int) Math.round(440 - (0.91 - 0.2) / 0.8 * 390);
    assertNotEquals(0xFFFFFF, image.getRGB(x, y) & 0xFFFFFF, "no bubble at LoRA's point");
    assertEquals(0xFFFFFF, image.getRGB(x, 45) & 0xFFFFFF, "above the plot is white");
    // the dashed baseline at 1/3, near the right edge (a dash or a gap: one of two neighbouring 5-pixel runs is red)
    int yb = (int) Math.round(440 - (1.0 / 3 - 0.2) / 0.8 * 390);
    boolean red = false;
    for (int xb = 700; xb < 712; xb++) {
      int rgb = image.getRGB(xb, yb);
      red |= ((rgb >> 16) & 0xFF) > 150 && ((rgb >> 8) & 0xFF) < 100;
    }
    assertTrue(red, "no baseline line at y " + yb);
  }

  @Test
  void labelsArePlacedWithoutOverlap() {
    BufferedImage image = new BufferedImage(10, 10, BufferedImage.TYPE_INT_RGB);
    FontMetrics fm = image.createGraphics().getFontMetrics(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    List<Rectangle> placed = new ArrayList<>();
    // six bubbles at the same point: every label finds its own place
    for (int i = 0; i < 6; i++) {
      Rectangle box = CompareChart.place("method-" + i + " (12 s)", 400, 300, 10, fm, placed, List.of(), 960, 600);
      for (Rectangle p : placed) {
        assertFalse(box.intersects(p), "label " + i + " overlaps " + p);
      }
      assertTrue(box.x >= 0 && box.y >= 0 && box.x + box.width <= 960 && box.y + box.height <= 600, box.toString());
      placed.add(box);
    }
    // a bubble right of the point: the label goes to its left instead
    Rectangle bubble = new Rectangle(412, 280, 60, 40);
    Rectangle box = CompareChart.place("lora (12 s)", 400, 300, 10, fm, List.of(), List.of(bubble), 960, 600);
    assertFalse(box.intersects(bubble), box.toString());
    assertTrue(box.x + box.width <= 390, box.toString());
  }
}
