<?php
// Fires WHMCS hooks through the stub, all inside one PHP "request":
//   php run_hook.php <Hook> '<vars json>' [<Hook> '<vars json>' ...]
// Prints one JSON document: per-call timings and publish statistics, the
// activity log, PHP errors raised and any output the hooks leaked.

error_reporting(E_ALL);
ini_set('display_errors', '1');
$GLOBALS['run_errors'] = array();
set_error_handler(function ($no, $str, $file, $line) {
    if (!(error_reporting() & $no)) {
        return false; // suppressed with @
    }
    $GLOBALS['run_errors'][] = $str . ' at ' . basename($file) . ':' . $line;
    return true;
});

require __DIR__ . '/whmcs_stub.php';

$args = array_slice($argv, 1);
if (count($args) % 2 !== 0) {
    fwrite(STDERR, "usage: run_hook.php <Hook> <vars-json> ...\n");
    exit(2);
}
$calls = array();
ob_start();
for ($i = 0; $i < count($args); $i += 2) {
    $vars = json_decode($args[$i + 1], true);
    if (!is_array($vars)) {
        $vars = array();
    }
    Hookworker::$last = null;
    $t = hrtime(true);
    run_hook($args[$i], $vars);
    $calls[] = array('hook' => $args[$i], 'seconds' => (hrtime(true) - $t) / 1e9, 'last' => Hookworker::$last);
}
$leaked = ob_get_clean();
echo json_encode(array(
    'request_id' => Hookworker::requestId(),
    'calls' => $calls,
    'activity' => $GLOBALS['stub_activity'],
    'errors' => $GLOBALS['run_errors'],
    'output' => $leaked,
), JSON_UNESCAPED_SLASHES), "\n";
