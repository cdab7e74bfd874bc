/**
 * The runnable demo ({@link dev.peft4j.bench.Demo}, the README's main job), the method comparison
 * ({@link dev.peft4j.bench.Compare}: {@link dev.peft4j.bench.CompareMethods} is its table of methods,
 * {@link dev.peft4j.bench.TextClassificationData} reads CSV / JSONL data, each trial runs in its own JVM,
 * {@link dev.peft4j.bench.Metrics} scores it, {@link dev.peft4j.bench.CompareReport} and
 * {@link dev.peft4j.bench.CompareChart} write the results), {@link dev.peft4j.bench.Predict} (a saved adapter applied
 * to new texts) and the JMH benchmarks ({@link dev.peft4j.bench.MlpStepBenchmark}).
 */
package dev.peft4j.bench;
