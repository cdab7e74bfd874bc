package dev.peft4j.bench;

import dev.peft4j.generate.GenerationConfig;
import dev.peft4j.generate.Generator;
import dev.peft4j.methods.Peft;
import dev.peft4j.model.HfModels;
import dev.peft4j.model.Llama;
import dev.peft4j.model.LlamaConfig;
import dev.peft4j.model.RandomLlamaWeights;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * Milliseconds per generated token with and without the KV cache, with LoRA q,v r=8 applied: a prompt of 32 tokens
 * (16 on the tiny model, which has 64 positions; a third argument sets it), 32 new tokens, batch 1 and 4, greedy; per
 * token = (time for 33 tokens − time for 1) / 32, median of 3, as wall time and as the process's CPU time (all
 * threads; steadier than wall time on a shared machine).
 * <pre>{@code
 * mvn -pl peft-bench exec:java -Dexec.mainClass=dev.peft4j.bench.GenerationBenchmark -Dexec.args="tiny|mid [checkpoint]"
 * }</pre>
 * {@code tiny}: a checkpoint directory (the tiny-llama fixture); {@code mid}: a random Llama of hidden 512, 8 layers,
 * 8 heads / 4 KV heads, MLP 1536, vocabulary 8192, built in memory.
 */
public final class GenerationBenchmark {

  private static final int NEW = 32;

  private GenerationBenchmark() {}

  public static void main(String[] args) throws IOException {
    SameDiff sd = args[0].equals("mid")
        ? Llama.causalLm(MID, RandomLlamaWeights.of(MID, 1)) : HfModels.loadDecoder(Path.of(args[1])).sameDiff();
    long vocab = sd.getArrForVarName("model.embed_tokens.weight").size(0);
    int prompt = args.length > 2 ? Integer.parseInt(args[2]) : args[0].equals("mid") ? 32 : 16;
    var model = Peft.lora(8).alpha(16).target("q_proj", "v_proj").apply(sd);
    for (int batch : new int[] {1, 4}) {
      List<long[]> prompts = new ArrayList<>();
      SplittableRandom random = new SplittableRandom(batch);
      for (int b = 0; b < batch; b++) {
        prompts.add(random.longs(prompt, 3, vocab).toArray());
      }
      for (boolean cached : new boolean[] {true, false}) {
        Generator g = cached ? Generator.of(model) : Generator.of(model).withoutCache();
        g.generate(prompts, GenerationConfig.greedy(4)); // warm-up
        double[] wall = new double[3];
        double[] cpu = new double[3];
        for (int rep = 0; rep < 3; rep++) {
          double[] one = seconds(g, prompts, 1);
          double[] many = seconds(g, prompts, NEW + 1);
          wall[rep] = (many[0] - one[0]) / NEW * 1000;
          cpu[rep] = (many[1] - one[1]) / NEW * 1000;
        }
        Arrays.sort(wall);
        Arrays.sort(cpu);
        System.out.printf(Locale.ROOT, "%s prompt %d batch %d %s: %.1f ms wall, %.1f ms CPU per token step (%.1f "
            + "tokens/s wall)%n", args[0], prompt, batch, cached ? "KV cache" : "no cache", wall[1], cpu[1],
            batch * 1000 / wall[1]);
      }
    }
  }

  /** Wall and process CPU seconds of one generation of {@code n} tokens. */
  private static double[] seconds(Generator g, List<long[]> prompts, int n) {
    var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
        .getOperatingSystemMXBean();
    long start = System.nanoTime();
    long cpu = os.getProcessCpuTime();
    g.generate(prompts, GenerationConfig.greedy(n));
    return new double[] {(System.nanoTime() - start) / 1e9, (os.getProcessCpuTime() - cpu) / 1e9};
  }

  static final LlamaConfig MID = new LlamaConfig("llama", 8192, 512, 1536, 8, 8, 4, 64, 1024, 1e-6, 10000, false,
      false, false, false);
}
