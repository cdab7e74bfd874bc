/**
 * The runnable demo ({@link dev.peft4j.bench.Demo}, the README's main job) and the JMH benchmarks
 * ({@link dev.peft4j.bench.MlpStepBenchmark}).
 */
package dev.peft4j.bench;
