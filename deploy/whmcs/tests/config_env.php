<?php
// Test configuration: every setting comes from the environment (set by
// whmcs_test.go or scripts/bench-hook).

$e = function ($k, $d = '') {
    $v = getenv($k);
    return $v === false ? $d : $v;
};

return array(
    'instance' => $e('HW_INSTANCE', 'test'),
    'servers' => $e('HW_SERVERS', 'nats://127.0.0.1:4222'),
    'token' => $e('HW_TOKEN'),
    'user' => $e('HW_USER'),
    'password' => $e('HW_PASS'),
    'tls_ca_file' => $e('HW_CA_FILE'),
    'tls_verify_peer' => $e('HW_TLS_VERIFY', '1') === '1',
    'expected_stream' => $e('HW_EXPECTED_STREAM', 'WHMCS_EVENTS'),
    'timeout' => (float) $e('HW_TIMEOUT', '1'),
    'spool_dir' => $e('HW_SPOOL', sys_get_temp_dir() . '/hookworker-test-spool'),
    'flush_per_request' => (int) $e('HW_FLUSH_PER_REQUEST', '20'),
    'flush_per_cron' => (int) $e('HW_FLUSH_PER_CRON', '10000'),
    'cron_seconds' => (float) $e('HW_CRON_SECONDS', '30'),
    'down_backoff' => (float) $e('HW_DOWN_BACKOFF', '0'),
    'client_custom_fields' => array_filter(explode(',', $e('HW_CUSTOM_FIELDS'))),
);
