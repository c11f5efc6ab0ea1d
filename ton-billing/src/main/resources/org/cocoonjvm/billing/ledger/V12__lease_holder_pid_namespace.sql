-- The PID namespace of the process holding a lease (Linux's /proc/self/ns/pid, e.g. "pid:[4026531836]"):
-- two processes with one host name can see different process ids (host-network containers, a fixed
-- container hostname, a process on the host beside one in a container), so a start checks the holder's
-- process id only in the holder's own namespace; otherwise the holder may be alive (review R, R-2).
-- Null where the system has none, and in rows written before V12 (checked by host name alone, as then).
ALTER TABLE gateway_leases ADD COLUMN holder_pid_namespace VARCHAR(64);
