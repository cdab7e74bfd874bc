package dev.peft4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The results files' content, and the chart as a PNG of the requested size that shows the data. */
class CompareReportTest {

  static final CompareResult LORA = new CompareResult("lora", "LoRA r=8 on query, value", 74_498, 22_640_644,
      0.329045, 5e-4, 60, 41.25, 6.5, 812.4, 2_147_483_648L, 0.6931, 0.2512, 0.9136, 0.9102, 0.9712,
      "adapters/lora");
  static final CompareResult IA3 = new CompareResult("ia3", "IA³ \"k, v\"", 10_754, 22_576_900, 0.047633, 3e-3,
      60, 30.0, 6.0, 1000.0, -1, 0.70, 0.40, 0.80, 0.75, Double.NaN, "adapters/ia3");

  @Test
  void csvHasAHeaderAndOneQuotedRowPerResult() {
    String[] lines = CompareReport.csv(List.of(LORA, IA3)).split("\n");
    assertEquals(3, lines.length);
    assertEquals(String.join(",", CompareReport.COLUMNS), lines[0]);
    assertEquals("lora,\"LoRA r=8 on query, value\",74498,22640644,0.329045,5e-04,60,41.25,6.50,812.4,2048,"
        + "0.6931,0.2512,0.9136,0.9102,0.9712,adapters/lora", lines[1]);
    assertEquals("ia3,\"IA³ \"\"k, v\"\"\",10754,22576900,0.047633,3e-03,60,30.00,6.00,1000.0,n/a,0.7000,0.4000,"
        + "0.8000,0.7500,NaN,adapters/ia3", lines[2]);
  }

  @Test
  void jsonHoldsTheSettingsAndEveryField() {
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("model", "MiniLM");
    settings.put("steps", 60);
    JsonObject root = JsonParser.parseString(CompareReport.json(settings, List.of(LORA, IA3))).getAsJsonObject();
    assertEquals("MiniLM", root.getAsJsonObject("settings").get("model").getAsString());
    assertEquals(60, root.getAsJsonObject("settings").get("steps").getAsInt());
    JsonObject lora = root.getAsJsonArray("results").get(0).getAsJsonObject();
    assertEquals(CompareReport.COLUMNS, List.copyOf(lora.keySet()));
    assertEquals(74_498, lora.get("trainable_params").getAsLong());
    assertEquals(0.9102, lora.get("f1").getAsDouble(), 0);
    assertEquals(2048.0, lora.get("peak_rss_mib").getAsDouble(), 0);
    assertEquals(41.25, lora.get("train_seconds").getAsDouble(), 0);
    JsonObject ia3 = root.getAsJsonArray("results").get(1).getAsJsonObject();
    assertTrue(ia3.get("roc_auc").isJsonNull());
    assertTrue(ia3.get("peak_rss_mib").isJsonNull());
    assertEquals("IA³ \"k, v\"", ia3.get("description").getAsString());
  }

  @Test
  void markdownListsTheSettingsAndATableRowPerResult() {
    String md = CompareReport.markdown(Map.of("steps", 60), List.of(LORA));
    assertTrue(md.contains("- steps: 60\n"), md);
    assertTrue(md.contains("| lora | 74,498 | 0.3290 | 41.3 | 812 | 2048 | 0.9136 | 0.9102 | 0.9712 | 0.693 → 0.251 "
        + "| 5e-04 | LoRA r=8 on query, value |\n"), md);
    String table = CompareReport.table(List.of(LORA, IA3));
    assertEquals(3, table.split("\n").length);
    assertTrue(table.split("\n")[1].matches("lora\\s+74,498\\s+0\\.3290\\s+41\\.3\\s+812\\s+2048\\s+0\\.9136\\s+"
        + "0\\.9102\\s+0\\.9712"), table);
  }

  @Test
  void chartIsAPngOfTheRequestedSizeThatShowsTheBubbles(@TempDir Path dir) throws IOException {
    Path png = dir.resolve("chart.png");
    CompareChart.write(List.of(LORA, IA3), png, 800, 500);
    byte[] bytes = Files.readAllBytes(png);
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'},
        java.util.Arrays.copyOf(bytes, 8));
    BufferedImage image = ImageIO.read(png.toFile());
    assertEquals(800, image.getWidth());
    assertEquals(500, image.getHeight());
    // the plot spans 10^-2 … 10^0 % on x (left 70, right 770) and 0.7 … 1.0 F1 on y (top 50, bottom 440):
    // LoRA's bubble is centred at x = 70 + (log10(0.329) + 2) / 2 · 700, y = 440 − (0.9102 − 0.7) / 0.3 · 390
    int x = (int) Math.round(70 + (Math.log10(0.329045) + 2) / 2 * 700);
    int y = (int) Math.round(440 - (0.9102 - 0.7) / 0.3 * 390);
    assertNotEquals(0xFFFFFF, image.getRGB(x, y) & 0xFFFFFF, "no bubble at LoRA's point");
    assertEquals(0xFFFFFF, image.getRGB(x, 45) & 0xFFFFFF, "above the plot is white");
  }
}
