package dev.peft4j.spark;

import dev.peft4j.model.Heads;

/** What {@link SparkScorer} appends beside each row's predicted label. */
public enum ScoreOutput {
  /** The softmax of the logits over the labels: the graph's {@value Heads#PROBABILITIES}. */
  PROBABILITIES(Heads.PROBABILITIES),
  /** The classification head's raw scores: the graph's {@value Heads#LOGITS}. */
  LOGITS(Heads.LOGITS);

  private final String variable;

  ScoreOutput(String variable) {
    this.variable = variable;
  }

  /** The graph variable read, also the default name of the appended column. */
  public String variable() {
    return variable;
  }
}
