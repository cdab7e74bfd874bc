package dev.peft4j.bench;

import static com.google.common.base.Preconditions.checkArgument;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * The comparison as a PNG: test macro-F1 (y, the metric the table ranks by) against trainable parameters in percent
 * on a log₁₀ x-axis, one bubble per method whose area is proportional to its training time, labelled with the
 * method's name; the majority-class baseline is a dashed horizontal line. Each label takes the first of a few places
 * around its bubble (right, left, above, below, then further up or down) that overlaps neither a label placed before
 * it nor another bubble; failing that, the place overlapping least, labels counting far more than bubbles. A label
 * not beside its bubble gets a thin leader line.
 * Drawn with {@code java.awt} in headless mode.
 */
public final class CompareChart {

  private static final Color[] PALETTE = {new Color(31, 119, 180), new Color(255, 127, 14), new Color(44, 160, 44),
      new Color(214, 39, 40), new Color(148, 103, 189), new Color(140, 86, 75), new Color(227, 119, 194),
      new Color(127, 127, 127), new Color(188, 189, 34), new Color(23, 190, 207)};
  private static final int MAX_RADIUS = 28;
  private static final int MIN_RADIUS = 4;

  private CompareChart() {}

  /**
   * Draws {@code results} into a {@code width × height} image.
   *
   * @throws IllegalArgumentException if there are no results or the image is smaller than 320 × 240
   */
  public static BufferedImage draw(List<CompareResult> results, CompareResult baseline, int width, int height) {
    checkArgument(!results.isEmpty(), "nothing to draw: no results");
    checkArgument(width >= 320 && height >= 240, "the chart needs at least 320 × 240 pixels, got %s × %s", width,
        height);
    System.setProperty("java.awt.headless", "true");
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, width, height);
      int left = 70;
      int right = width - 30;
      int top = 50;
      int bottom = height - 60;

      // x: log10 of the trainable percentage, whole decades around the data
      double minLog = Double.POSITIVE_INFINITY;
      double maxLog = Double.NEGATIVE_INFINITY;
      for (CompareResult r : results) {
        double l = Math.log10(Math.max(r.trainablePercent(), 1e-6));
        minLog = Math.min(minLog, l);
        maxLog = Math.max(maxLog, l);
      }
      double x0 = Math.floor(minLog);
      double x1 = Math.max(Math.ceil(maxLog), x0 + 1);
      // y: macro-F1 from a round value below the lowest (the baseline included) to 1
      double minF1 = Math.min(baseline.macroF1().mean(), results.stream().mapToDouble(r -> r.macroF1().mean())
          .filter(Double::isFinite).min().orElse(0));
      double y0 = Math.max(0, Math.floor(Math.min(minF1, 0.9) * 10 - 0.5) / 10);
      double y1 = 1.0;
      double maxTime = results.stream().mapToDouble(CompareResult::trainSeconds).max().orElse(1);

      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      FontMetrics fm = g.getFontMetrics();
      // grid and ticks
      for (double d = x0; d <= x1 + 1e-9; d += 1) {
        int x = px(d, x0, x1, left, right);
        g.setColor(new Color(225, 225, 225));
        g.drawLine(x, top, x, bottom);
        g.setColor(Color.DARK_GRAY);
        String label = percentLabel(d);
        g.drawString(label, x - fm.stringWidth(label) / 2, bottom + 16);
      }
      for (double v = y0; v <= y1 + 1e-9; v += 0.1) {
        int y = py(v, y0, y1, top, bottom);
        g.setColor(new Color(225, 225, 225));
        g.drawLine(left, y, right, y);
        g.setColor(Color.DARK_GRAY);
        String label = String.format(Locale.ROOT, "%.1f", v);
        g.drawString(label, left - 8 - fm.stringWidth(label), y + 4);
      }
      g.setColor(Color.BLACK);
      g.drawRect(left, top, right - left, bottom - top);
      String xTitle = "trainable parameters (%, log scale)";
      g.drawString(xTitle, (left + right - fm.stringWidth(xTitle)) / 2, bottom + 38);
      Graphics2D rotated = (Graphics2D) g.create();
      rotated.rotate(-Math.PI / 2);
      rotated.drawString("test macro-F1", -(top + bottom + fm.stringWidth("test macro-F1")) / 2, 20);
      rotated.dispose();
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
      g.drawString("Test macro-F1 vs trainable parameters (bubble area = training time)", left, 30);

      List<Rectangle> placed = new ArrayList<>();
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      if (Double.isFinite(baseline.macroF1().mean())) {
        int y = py(Math.max(baseline.macroF1().mean(), y0), y0, y1, top, bottom);
        g.setColor(new Color(200, 0, 0));
        g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 4}, 0));
        g.drawLine(left, y, right, y);
        String label = String.format(Locale.ROOT, "majority-class baseline %.3f", baseline.macroF1().mean());
        Rectangle box = new Rectangle(left + 4, y - 4 - fm.getAscent(), fm.stringWidth(label), fm.getHeight());
        g.drawString(label, box.x, y - 4);
        placed.add(box);
        g.setStroke(new BasicStroke(1));
      }

      // bubbles, largest first so small ones stay visible; then the labels, best first
      List<CompareResult> bySize = results.stream()
          .sorted((a, b) -> Double.compare(b.trainSeconds(), a.trainSeconds())).toList();
      int[][] centres = new int[results.size()][];
      for (CompareResult r : bySize) {
        int i = results.indexOf(r);
        double f1 = Double.isFinite(r.macroF1().mean()) ? r.macroF1().mean() : y0;
        int x = px(Math.log10(Math.max(r.trainablePercent(), 1e-6)), x0, x1, left, right);
        int y = py(Math.max(f1, y0), y0, y1, top, bottom);
        int radius = (int) Math.max(MIN_RADIUS, Math.round(MAX_RADIUS * Math.sqrt(r.trainSeconds() / maxTime)));
        centres[i] = new int[] {x, y, radius};
        Color c = PALETTE[i % PALETTE.length];
        g.setColor(new Color(c.getRed(), c.getGreen(), c.getBlue(), 120));
        g.fillOval(x - radius, y - radius, 2 * radius, 2 * radius);
        g.setColor(c.darker());
        g.setStroke(new BasicStroke(1.5f));
        g.drawOval(x - radius, y - radius, 2 * radius, 2 * radius);
      }
      List<Rectangle> bubbles = new ArrayList<>();
      for (int[] c : centres) {
        bubbles.add(new Rectangle(c[0] - c[2], c[1] - c[2], 2 * c[2], 2 * c[2]));
      }
      List<CompareResult> byScore = results.stream()
          .sorted((a, b) -> Double.compare(b.macroF1().mean(), a.macroF1().mean())).toList();
      for (CompareResult r : byScore) {
        int i = results.indexOf(r);
        int[] c = centres[i];
        String label = String.format(Locale.ROOT, "%s (%.0f s)", r.method(), r.trainSeconds());
        List<Rectangle> others = new ArrayList<>(bubbles);
        others.remove(i);
        Rectangle box = place(label, c[0], c[1], c[2], fm, placed, others, width, height);
        placed.add(box);
        double gap = Math.hypot(box.getCenterX() - c[0], box.getCenterY() - c[1]) - c[2] - box.width / 2.0;
        if (gap > 8) { // not beside its bubble: a leader line from the bubble's edge to the label's nearest side
          double angle = Math.atan2(box.getCenterY() - c[1], box.getCenterX() - c[0]);
          int lx = box.getCenterX() < c[0] ? box.x + box.width : box.x;
          g.setColor(Color.GRAY);
          g.setStroke(new BasicStroke(0.8f));
          g.drawLine((int) Math.round(c[0] + c[2] * Math.cos(angle)), (int) Math.round(c[1] + c[2] * Math.sin(angle)),
              lx, (int) box.getCenterY());
        }
        g.setColor(Color.BLACK);
        g.drawString(label, box.x, box.y + fm.getAscent());
      }
    } finally {
      g.dispose();
    }
    return image;
  }

  /**
   * The first of the candidate places for a label at a bubble ({@code x, y, radius}) that overlaps no placed label
   * and no other bubble's box and stays in the image; if every candidate overlaps, the one of the least overlap, an
   * overlap with a label weighing 100 times one with a bubble.
   */
  static Rectangle place(String label, int x, int y, int radius, FontMetrics fm, List<Rectangle> placed,
      List<Rectangle> bubbles, int width, int height) {
    int w = fm.stringWidth(label);
    int h = fm.getHeight();
    List<Rectangle> candidates = new ArrayList<>();
    candidates.add(new Rectangle(x + radius + 3, y - h / 2, w, h));
    candidates.add(new Rectangle(x - radius - 3 - w, y - h / 2, w, h));
    candidates.add(new Rectangle(x - w / 2, y - radius - 2 - h, w, h));
    candidates.add(new Rectangle(x - w / 2, y + radius + 2, w, h));
    for (int step = 1; step <= 8; step++) {
      candidates.add(new Rectangle(x + radius + 3, y - h / 2 - step * h, w, h));
      candidates.add(new Rectangle(x + radius + 3, y - h / 2 + step * h, w, h));
      candidates.add(new Rectangle(x - radius - 3 - w, y - h / 2 - step * h, w, h));
      candidates.add(new Rectangle(x - radius - 3 - w, y - h / 2 + step * h, w, h));
    }
    Rectangle best = null;
    long bestOverlap = Long.MAX_VALUE;
    for (Rectangle c : candidates) {
      if (c.x < 0 || c.y < 0 || c.x + c.width > width || c.y + c.height > height) {
        continue;
      }
      long overlap = 100 * area(c, placed) + area(c, bubbles);
      if (overlap == 0) {
        return c;
      }
      if (overlap < bestOverlap) {
        best = c;
        bestOverlap = overlap;
      }
    }
    return best != null ? best : candidates.get(0);
  }

  private static long area(Rectangle c, List<Rectangle> others) {
    long sum = 0;
    for (Rectangle p : others) {
      Rectangle i = c.intersection(p);
      sum += i.isEmpty() ? 0 : (long) i.width * i.height;
    }
    return sum;
  }

  /** Draws and writes a PNG to {@code file}. */
  public static void write(List<CompareResult> results, CompareResult baseline, Path file, int width, int height)
      throws IOException {
    if (!ImageIO.write(draw(results, baseline, width, height), "png", file.toFile())) {
      throw new IOException("no PNG writer available for " + file);
    }
  }

  private static String percentLabel(double log10) {
    double v = Math.pow(10, log10);
    return v >= 1 ? String.format(Locale.ROOT, "%.0f%%", v) : String.format(Locale.ROOT, "%s%%",
        new java.math.BigDecimal(v).round(new java.math.MathContext(1)).stripTrailingZeros().toPlainString());
  }

  private static int px(double v, double v0, double v1, int p0, int p1) {
    return (int) Math.round(p0 + (v - v0) / (v1 - v0) * (p1 - p0));
  }

  private static int py(double v, double v0, double v1, int top, int bottom) {
    return (int) Math.round(bottom - (v - v0) / (v1 - v0) * (bottom - top));
  }
}
