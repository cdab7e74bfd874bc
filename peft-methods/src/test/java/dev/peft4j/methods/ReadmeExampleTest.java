package dev.peft4j.methods;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.peft4j.PeftModel;
import dev.peft4j.model.Mlp;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/** Keeps the README's quick start honest. */
class ReadmeExampleTest {

  @Test
  void quickStartPrintsWhatTheReadmeSays() {
    SameDiff sd = Mlp.classifier(32, 128, 3, 4, DataType.FLOAT, 7);
    PeftModel m = Peft.lora(16).alpha(32).dropout(0.05).target("fc", "head").apply(sd);
    // (32+128)·16 + 2·(128+128)·16 + (128+4)·16 trainable; 32·128+128 + 2·(128·128+128) + 128·4+4 base
    assertEquals("trainable params: 12,864 || all params: 50,628 || trainable%: 25.4089",
        m.trainableParameters().toString());
  }
}
