/** PEFT training and adapter inference on Apache Spark. */
package dev.peft4j.spark;
