package dev.peft4j.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peft4j.PeftModel;
import dev.peft4j.model.Mlp;
import dev.peft4j.testing.ToyModels;
import java.lang.reflect.Field;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.ArrayHolder;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.array.ThreadSafeArrayHolder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.util.DeviceLocal;

class ArrayHoldersTest {

  /** x [2, 3] · w [3, 4] + c [4], in SameDiff's default (lazy) holders. */
  private static SameDiff affine() {
    SameDiff sd = SameDiff.create();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3);
    SDVariable w = sd.var("w", Nd4j.linspace(DataType.FLOAT, 1, 12, 1).reshape(3, 4).div(10));
    SDVariable c = sd.constant("c", Nd4j.createFromArray(0.5f, -1f, 2f, 0f));
    x.mmul(w).add("out", c);
    return sd;
  }

  private static INDArray out(SameDiff sd) {
    INDArray x = Nd4j.linspace(DataType.FLOAT, -1, 6, 1).reshape(2, 3);
    return sd.output(Map.of("x", x), "out").get("out");
  }

  /** How many of the holder's arrays also have ND4J's delayed duplicate (a {@code DeviceLocal}'s spare copy). */
  private static int duplicates(ArrayHolder holder) throws ReflectiveOperationException {
    if (!(holder instanceof ThreadSafeArrayHolder)) {
      return 0;
    }
    Field map = ThreadSafeArrayHolder.class.getDeclaredField("map");
    map.setAccessible(true);
    Field delayed = DeviceLocal.class.getDeclaredField("delayedArray");
    delayed.setAccessible(true);
    int n = 0;
    for (Object local : ((Map<?, ?>) map.get(holder)).values()) {
      n += delayed.get(local) != null ? 1 : 0;
    }
    return n;
  }

  private static int duplicates(SameDiff sd) throws ReflectiveOperationException {
    return duplicates(sd.getVariablesArrays()) + duplicates(sd.getConstantArrays());
  }

  /** What this class works around: if a later ND4J stops keeping the duplicate, this test says so. */
  @Test
  void sameDiffsDefaultHolderKeepsADuplicateOfEachArray() throws ReflectiveOperationException {
    SameDiff sd = affine();
    assertTrue(ArrayHolders.hasLazyHolder(sd));
    assertEquals(1, duplicates(sd.getVariablesArrays()), "w");
    assertEquals(1, duplicates(sd.getConstantArrays()), "c");
  }

  @Test
  void keepEachArrayOnceKeepsTheSameArraysWithoutTheirDuplicates() throws ReflectiveOperationException {
    SameDiff sd = affine();
    INDArray before = out(sd);
    INDArray w = sd.getArrForVarName("w");
    INDArray c = sd.getArrForVarName("c");
    assertSame(sd, ArrayHolders.keepEachArrayOnce(sd));
    assertFalse(ArrayHolders.hasLazyHolder(sd));
    assertEquals(0, duplicates(sd));
    assertSame(w, sd.getArrForVarName("w"));
    assertSame(c, sd.getArrForVarName("c"));
    assertEquals(before, out(sd));
    ArrayHolder held = sd.getVariablesArrays();
    ArrayHolders.keepEachArrayOnce(sd);
    assertSame(held, sd.getVariablesArrays(), "a second call changes nothing");
    w.muli(2); // a write into the held array (as an optimizer's update) reaches the graph
    assertEquals(before.sub(c).mul(2).add(c), out(sd));
    assertEquals(VariableType.VARIABLE, sd.getVariable("w").getVariableType());
  }

  @Test
  void modelsWrappedGraphsCopiesAndGradientFunctionsHoldNoDuplicate() throws ReflectiveOperationException {
    SameDiff model = ToyModels.mlp(DataType.FLOAT);
    assertFalse(ArrayHolders.hasLazyHolder(model), "a model builder's graph");
    assertEquals(0, duplicates(model));
    SameDiff wrapped = PeftModel.wrap(affine()).sameDiff();
    assertFalse(ArrayHolders.hasLazyHolder(wrapped), "a graph given to PeftModel.wrap");
    assertEquals(0, duplicates(wrapped));

    SameDiff copy = GraphCopies.copy(model);
    copy.setLossVariables(Mlp.LOSS);
    copy.createGradFunction();
    SameDiff grad = copy.getFunction("grad");
    int weights = 0;
    for (SDVariable v : model.variables()) {
      if (v.getVariableType() == VariableType.VARIABLE || v.getVariableType() == VariableType.CONSTANT) {
        INDArray original = model.getArrForVarName(v.name());
        assertSame(original, copy.getArrForVarName(v.name()), "the copy's " + v.name());
        if (grad.hasVariable(v.name())) {
          assertSame(original, grad.getArrForVarName(v.name()), "the copy's gradient function's " + v.name());
        }
        weights++;
      }
    }
    assertTrue(weights >= 4, "weights checked: " + weights);
    assertEquals(0, duplicates(copy));
    assertEquals(0, duplicates(grad), "gradient functions get SingleThreadArrayHolders, which keep no duplicate");
  }

  @Test
  void holdHoldsTheGivenArrayWhereSetArrayForVariableCopiesIntoTheHeldOne() {
    SameDiff sd = ArrayHolders.keepEachArrayOnce(affine());
    INDArray held = sd.getArrForVarName("w");
    INDArray given = Nd4j.rand(DataType.FLOAT, 3, 4);
    sd.setArrayForVariable("w", given);
    assertNotSame(given, sd.getArrForVarName("w"), "ND4J's trap: the values were copied into the held array");
    assertSame(held, sd.getArrForVarName("w"));
    assertEquals(given, held);

    INDArray other = Nd4j.rand(DataType.FLOAT, 3, 4);
    ArrayHolders.hold(sd, "w", other);
    assertSame(other, sd.getArrForVarName("w"));
    INDArray c = sd.getArrForVarName("c");
    INDArray x = Nd4j.linspace(DataType.FLOAT, -1, 6, 1).reshape(2, 3);
    assertTrue(x.mmul(other).addRowVector(c).equalsWithEps(out(sd), 1e-6f));
    other.assign(0); // the graph reads the held array itself
    assertEquals(c.reshape(1, 4).repeat(0, 2), out(sd));

    INDArray constant = Nd4j.zeros(DataType.FLOAT, 4);
    ArrayHolders.hold(sd, "c", constant);
    assertSame(constant, sd.getArrForVarName("c"));
    assertSame(other, sd.getArrForVarName("w"));
  }

  @Test
  void holdRefusesWhatItCannotHold() {
    SameDiff sd = ArrayHolders.keepEachArrayOnce(affine());
    IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
        () -> ArrayHolders.hold(sd, "v", Nd4j.rand(DataType.FLOAT, 3, 4)));
    assertTrue(unknown.getMessage().contains("no variable 'v'"), unknown.getMessage());
    IllegalArgumentException placeholder = assertThrows(IllegalArgumentException.class,
        () -> ArrayHolders.hold(sd, "x", Nd4j.rand(DataType.FLOAT, 2, 3)));
    assertTrue(placeholder.getMessage().contains("'x' is a PLACEHOLDER"), placeholder.getMessage());
    INDArray w = sd.getArrForVarName("w");
    IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
        () -> ArrayHolders.hold(sd, "w", Nd4j.rand(DataType.DOUBLE, 3, 4)));
    assertTrue(type.getMessage().contains("FLOAT") && type.getMessage().contains("DOUBLE"), type.getMessage());
    assertSame(w, sd.getArrForVarName("w"), "nothing changed");
  }
}
