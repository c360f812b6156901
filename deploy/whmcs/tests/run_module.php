<?php
// Calls hookworker server module functions through the WHMCS stand-in, all
// inside one PHP "request":
//   php run_module.php <Function> '<params json>' [<Function> '<params json>' ...]
// <Function> is the part after hookworker_ (CreateAccount, TestConnection,
// ...). Prints one JSON document: per call its return value, seconds and
// publish statistics; the activity and module logs, PHP errors raised and
// any output leaked.

error_reporting(E_ALL);
ini_set('display_errors', '1');
$GLOBALS['run_errors'] = array();
$GLOBALS['stub_module_log'] = array();
set_error_handler(function ($no, $str, $file, $line) {
    if (!(error_reporting() & $no)) {
        return false; // suppressed with @
    }
    $GLOBALS['run_errors'][] = $str . ' at ' . basename($file) . ':' . $line;
    return true;
});

require __DIR__ . '/whmcs_stub.php';
define('HOOKWORKER_LIB', __DIR__ . '/../hookworker.php');
require __DIR__ . '/../modules/servers/hookworker/hookworker.php';

$args = array_slice($argv, 1);
if (count($args) % 2 !== 0) {
    fwrite(STDERR, "usage: run_module.php <Function> <params-json> ...\n");
    exit(2);
}
$calls = array();
ob_start();
for ($i = 0; $i < count($args); $i += 2) {
    $params = json_decode($args[$i + 1], true);
    if (!is_array($params)) {
        $params = array();
    }
    $fn = 'hookworker_' . $args[$i];
    Hookworker::$last = null;
    $t = hrtime(true);
    $ret = $fn($params);
    $calls[] = array('fn' => $args[$i], 'seconds' => (hrtime(true) - $t) / 1e9, 'return' => $ret, 'last' => Hookworker::$last);
}
$leaked = ob_get_clean();
echo json_encode(array(
    'request_id' => Hookworker::requestId(),
    'calls' => $calls,
    'activity' => $GLOBALS['stub_activity'],
    'module_log' => $GLOBALS['stub_module_log'],
    'errors' => $GLOBALS['run_errors'],
    'output' => $leaked,
), JSON_UNESCAPED_SLASHES), "\n";
