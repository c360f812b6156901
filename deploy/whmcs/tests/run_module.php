<?php
// Calls hookworker server module functions through the WHMCS stand-in, all
// inside one PHP "request":
//   php run_module.php <Function> '<params json>' [<Function> '<params json>' ...]
// <Function> is the part after hookworker_ (CreateAccount, TestConnection,
// ...). Prints one JSON document: per call its return value, seconds and
// publish statistics; the activity and module logs, PHP errors raised and
// any output leaked.

require __DIR__ . '/bootstrap.php';
define('HOOKWORKER_LIB', __DIR__ . '/../hookworker.php');
require __DIR__ . '/../modules/servers/hookworker/hookworker.php';

run_calls(array_slice($argv, 1), 'run_module.php <Function> <params-json> ...', 'fn', function ($fn, $params) {
    $f = 'hookworker_' . $fn;
    return array('return' => $f($params));
}, array('module_log' => 'stub_module_log'));
