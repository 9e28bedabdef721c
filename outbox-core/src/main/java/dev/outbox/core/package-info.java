/** The message contract and the {@code Outbox} append API used inside the caller's jOOQ transaction. */
package dev.outbox.core;
