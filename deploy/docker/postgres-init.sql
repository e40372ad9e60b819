-- One database per service: no service reads another's tables.
CREATE DATABASE matching;
CREATE DATABASE activity;
CREATE DATABASE payments;
CREATE DATABASE notify;
CREATE DATABASE gateway;
