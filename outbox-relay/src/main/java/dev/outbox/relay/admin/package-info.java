/**
 * Operating a relay deployment from the database: status (backlog, leases, members, parked rows,
 * xmin horizon) and the repair of parked messages. See {@link dev.outbox.relay.admin.RelayAdmin}.
 */
package dev.outbox.relay.admin;
